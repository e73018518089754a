"""The panel's inputs obey the bridge's input limits, and its stats show the MQTT input's state
(issue 15): a page's messages over real WebSockets (aiohttp's client, as the page speaks) to a
bridge running in this process on real ports, against a real mosquitto. Each test waits for
the messages it expects, never on time."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from bridge_harness import UdpReceiver
from conftest import Mosquitto
from panel_harness import next_message, page, panel_config, running_panel, send

from vadbridge.config import BridgeConfig, parse_config
from vadbridge.web import ControlPanel

RATE_PER_S = 4  # limits.rate_limit_per_source: a bucket of 4 tokens, refilled at 4 a second
SENT = 12


async def replies_until_probe(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every ``rejected`` reply up to the one of a probe sent now (a page's messages are
    handled in order, so the probe's reply comes after those of every message before it)."""
    await send(ws, type="watch", avatar="probe-never-exists")
    replies: list[dict[str, Any]] = []
    while True:
        reply = await next_message(ws, "rejected")
        if reply["kind"] == "web.avatar":
            return replies
        replies.append(reply)


async def totals_once(ws: aiohttp.ClientWebSocketResponse, accepted: int,
                      rejected: dict[str, int]) -> dict[str, Any]:
    """The first stats message whose totals reached ``accepted`` web inputs and ``rejected``."""
    while True:
        stats = await next_message(ws, "stats")
        totals = stats["totals"]
        if (totals["accepted"].get("web", 0) >= accepted
                and all(totals["rejected"].get(k, 0) >= n for k, n in rejected.items())):
            return stats


def test_web_inputs_beyond_the_per_source_rate_limit_are_refused_and_counted(
    vmc: UdpReceiver,
) -> None:
    """A token bucket per sender address (``limits.rate_limit_per_source`` = 4): a full second's
    worth (4) passes at once, then one more per 1/4 s. Twelve messages sent as fast as the
    socket takes them: 4 accepted, plus at most one per quarter second the burst took (the
    client's measured send-to-last-reply time bounds the server's handling time), exactly the
    rest rejected as ``rate_limit``, each answered to the page."""

    async def scenario(panel: ControlPanel) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        async with page(panel) as ws:
            started_s = time.monotonic()
            for i in range(SENT):
                await send(ws, type="vad", valence=round(0.05 * (i + 1), 2))
            replies = await replies_until_probe(ws)
            elapsed_s = time.monotonic() - started_s
            refused = len(replies)
            stats = await totals_once(ws, SENT - refused, {"rate_limit": refused})
            return int(RATE_PER_S * elapsed_s), replies, stats

    config = panel_config(vmc.port, f"limits: {{rate_limit_per_source: {RATE_PER_S}}}\n")
    with running_panel(config) as (_bridge, panel):
        refill, replies, stats = asyncio.run(scenario(panel))
    accepted = SENT - len(replies)
    assert RATE_PER_S <= accepted <= RATE_PER_S + refill, (accepted, refill)
    assert {reply["kind"] for reply in replies} == {"rate_limit"}
    assert replies[0]["reason"] == f"over {RATE_PER_S} messages/s"
    assert stats["totals"]["accepted"] == {"web": accepted}
    assert stats["totals"]["rejected"] == {"rate_limit": SENT - accepted, "web.avatar": 1}


@pytest.mark.parametrize(("avatars", "admitted"), [
    ("{ids: [default], accept_new: false}", []),  # only the listed ids exist
    ("{ids: [default], max: 2}", ["first-new"]),  # new ones until the table is full
])
def test_a_web_input_for_an_avatar_not_admitted_is_refused_as_avatar_limit(
    vmc: UdpReceiver, avatars: str, admitted: list[str]
) -> None:
    async def scenario(panel: ControlPanel) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with page(panel) as ws:
            for avatar in ("first-new", "second-new", "default"):
                await send(ws, type="emotion", avatar=avatar, emotion="happiness")
            replies = await replies_until_probe(ws)
            accepted = 1 + len(admitted)
            return replies, await totals_once(ws, accepted, {"avatar.limit": 3 - accepted})

    with running_panel(panel_config(vmc.port, f"avatars: {avatars}\n")) as (_bridge, panel):
        replies, stats = asyncio.run(scenario(panel))
    refused = [a for a in ("first-new", "second-new") if a not in admitted]
    assert [reply["kind"] for reply in replies] == ["avatar.limit"] * len(refused)
    assert [reply["reason"].split()[1] for reply in replies] == [f"'{a}'" for a in refused]
    assert replies[0]["reason"].endswith(
        "not admitted (unknown, another shard's, or the table is full)")
    assert stats["totals"]["accepted"] == {"web": 1 + len(admitted)}
    assert Counter(stats["totals"]["rejected"]) == Counter(
        {"avatar.limit": len(refused), "web.avatar": 1})
    assert stats["avatars"] == ["default", *admitted]


def mqtt_panel_config(vmc_port: int, broker: Mosquitto) -> BridgeConfig:
    """The panel (on a port the kernel picks) and an MQTT input from ``broker``; its reconnect
    backoff capped at 0.2 s so the return of the broker is seen at once."""
    config = parse_config(
        "stats_interval_s: 0\n"
        f"inputs: [{{type: mqtt, host: {broker.host}, port: {broker.port}, "
        "reconnect_max_s: 0.2}]\n"
        f"outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc_port}}}]\n"
        "web: {enabled: true}\n", "<test>")
    return dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))


def test_the_panels_stats_show_the_mqtt_input_connected_then_retrying_then_back(
    vmc: UdpReceiver, mosquitto: Mosquitto
) -> None:
    """The stats message lists the inputs with a state (MQTT's: connected, or retrying while
    the broker is away); the page shows it in its connections table as ``input <name>``."""

    async def mqtt_state(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict[str, Any]:
        while True:
            stats = await next_message(ws, "stats")
            states = {s["name"]: s["state"] for s in stats["sources"]
                      if s["name"].startswith("mqtt")}
            assert len(states) == 1, stats["sources"]
            if list(states.values()) == [wanted]:
                return stats

    async def scenario(panel: ControlPanel) -> list[dict[str, Any]]:
        async with page(panel) as ws:
            seen = [await mqtt_state(ws, "connected")]
            await asyncio.to_thread(mosquitto.stop)
            seen.append(await mqtt_state(ws, "retrying"))
            await asyncio.to_thread(mosquitto.start)
            seen.append(await mqtt_state(ws, "connected"))
            return seen

    with running_panel(mqtt_panel_config(vmc.port, mosquitto)) as (_bridge, panel):
        seen = asyncio.run(scenario(panel))
    mqtt, web = f"mqtt {mosquitto.host}:{mosquitto.port}", f"web 127.0.0.1:{panel.port}"
    assert [stats["sources"] for stats in seen] == [
        [{"name": mqtt, "state": state}, {"name": web, "state": None}]  # the panel has none
        for state in ("connected", "retrying", "connected")]
