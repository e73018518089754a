"""Rejected inputs are counted per source as well as per kind (issue 15, "Watch it"): the panel
shows each source's accepted and rejected inputs, while the stats line and the log stay per kind
(README, "Reading the log"; docs/panel.md, "Messages to the page")."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from typing import Any

import aiohttp
import pytest
from bridge_harness import TIMEOUT_S, UdpReceiver, osc, running_bridge, send_osc, wait_until
from conftest import Mosquitto, free_port
from panel_harness import next_message, page, running_panel, send

from vadbridge.config import BridgeConfig, parse_config
from vadbridge.core.stats import InputStats, format_stats_line, interval_counts
from vadbridge.daemon import Bridge
from vadbridge.web import ControlPanel
from vadbridge.web.messages import stats_message


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def bridge_snapshot(inputs: dict[str, dict[str, int]], frames: int = 600) -> dict[str, Any]:
    """A ``Bridge.stats_snapshot()`` around ``inputs`` (an ``InputStats.snapshot()``)."""
    return {"frames": frames, "late": 0, "skipped": 0, "avatars": 1, "max_lateness_ms": 1.5,
            "mean_lateness_ms": 0.25, "inferred_rows": 1, "inputs": inputs, "send_errors": {}}


# --- the counters ---------------------------------------------------------------------------------


def test_a_rejection_counts_under_its_kind_and_under_its_source() -> None:
    stats = InputStats()
    stats.accept("osc")
    stats.reject("rate_limit", "OSC flood", source="osc")
    stats.reject("rate_limit", "MQTT flood", source="mqtt")  # one kind, two sources
    stats.reject("avatar.limit", "a page's made-up avatar", source="web")
    stats.reject("web.origin", "another site's page", source="web")
    snapshot = stats.snapshot()
    assert snapshot["rejected"] == {"rate_limit": 2, "avatar.limit": 1, "web.origin": 1}
    assert snapshot["rejected_by_source"] == {"osc": 1, "mqtt": 1, "web": 2}
    assert snapshot["accepted"] == {"osc": 1}
    assert stats.rejected_total == 4


def test_the_per_source_counts_are_a_copy() -> None:
    stats = InputStats()
    stats.reject("osc.decode", "x", source="osc")
    snapshot = stats.snapshot()
    stats.reject("osc.decode", "y", source="osc")
    assert snapshot["rejected_by_source"] == {"osc": 1}


def test_a_kind_shared_by_sources_is_still_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    stats = InputStats(log_interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="vadbridge.inputs"):
        stats.reject("rate_limit", "from OSC", source="osc")
        stats.reject("rate_limit", "from MQTT", source="mqtt")  # the kind's budget is spent
        clock.now_s += 10.0
        stats.reject("rate_limit", "from the page", source="web")
    assert [record.getMessage() for record in caplog.records] == [
        "rejected input (rate_limit): from OSC",
        "rejected input (rate_limit): from the page (1 more since)",
    ]


def test_interval_counts_give_each_sources_rejections_of_the_interval() -> None:
    stats = InputStats()
    stats.reject("rate_limit", "x", source="osc")
    stats.reject("web.json", "x", source="web")
    before = bridge_snapshot(stats.snapshot())
    stats.reject("rate_limit", "y", source="osc")
    stats.reject("rate_limit", "y", source="mqtt")
    stats.reject("mqtt.json", "y", source="mqtt")
    counts = interval_counts(bridge_snapshot(stats.snapshot(), frames=1200), before)
    assert counts["inputs"]["rejected_by_source"] == {"osc": 1, "mqtt": 2, "web": 0}
    assert counts["inputs"]["rejected"] == {"rate_limit": 2, "web.json": 0, "mqtt.json": 1}


def test_the_stats_line_does_not_show_the_per_source_rejections() -> None:
    stats = InputStats()
    stats.accept("osc")
    stats.reject("mqtt.json", "x", source="mqtt")
    stats.reject("rate_limit", "x", source="osc")
    now = bridge_snapshot(stats.snapshot())
    line = format_stats_line(interval_counts(now, {"inputs": {}}), 10.0)
    assert line == (
        "stats (last 10 s): 600 frames (60.0 fps), late 0, skipped 0, avatars 1; inputs "
        "accepted osc=1, rejected mqtt.json=1 rate_limit=1, clipped 0; send errors 0"
    )


def test_the_stats_message_carries_the_rejections_per_source_of_the_interval_and_since_start(
) -> None:
    stats = InputStats()
    stats.accept("web")
    stats.reject("web.unknown", "x", source="web")
    before = bridge_snapshot(stats.snapshot())
    stats.accept("osc")
    stats.reject("osc.arity", "y", source="osc")
    stats.reject("avatar.limit", "y", source="web")
    now = bridge_snapshot(stats.snapshot(), frames=630)
    for snapshot in (before, now):  # what ``BridgeBackend.stats`` adds
        snapshot.update(sources=[], outputs=[], output_count=0)
    message = json.loads(stats_message(now, before, 0.5, avatars=["default"],
                                       panel={"clients": 1, "dropped_updates": 0}))
    assert message["inputs"]["rejected_by_source"] == {"osc": 1, "web": 1}
    assert message["inputs"]["accepted"] == {"web": 0, "osc": 1}
    assert message["totals"]["rejected_by_source"] == {"osc": 1, "web": 2}
    assert message["totals"]["accepted"] == {"web": 1, "osc": 1}


# --- real sources: OSC over UDP, MQTT through mosquitto, the panel's WebSocket --------------------


def three_sources(vmc_port: int, osc_port: int, broker_port: int, extra: str = "") -> BridgeConfig:
    """OSC, MQTT and the panel (on a port the kernel picks), one VMC output."""
    config = parse_config(f"""
stats_interval_s: 0
inputs:
  - {{type: osc, host: 127.0.0.1, port: {osc_port}}}
  - {{type: mqtt, host: 127.0.0.1, port: {broker_port}}}
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc_port}}}]
web: {{enabled: true}}
{extra}""", "<test>")
    return dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))


def rejected_by_source(bridge: Bridge) -> dict[str, int]:
    return dict(bridge.input_stats.snapshot()["rejected_by_source"])


def wait_for_mqtt(bridge: Bridge) -> None:
    (mqtt,) = [source for source in bridge.sources if source.kind == "mqtt"]
    wait_until(lambda: bool(getattr(mqtt, "connected", False)), "the MQTT connection")


async def refused_page_of_another_site(panel: ControlPanel) -> int:
    """The HTTP status a WebSocket from another site's page gets: refused (``web.origin``)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
        async with page(panel, headers={"Origin": "http://evil.example"}):
            pass
    return refusal.value.status


def test_osc_mqtt_and_web_rejections_each_land_under_their_own_source(
    vmc: UdpReceiver, mosquitto: Mosquitto,
) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)

    async def drive(panel: ControlPanel) -> tuple[str, int, dict[str, Any]]:
        async with page(panel) as ws:
            await send(ws, type="dance")  # web.unknown, answered to the page
            answer = await next_message(ws, "rejected")
            status = await refused_page_of_another_site(panel)  # web.origin, at the HTTP level
            async with asyncio.timeout(TIMEOUT_S):  # stats twice a second until all are in
                stats = await next_message(ws, "stats")
                while stats["totals"]["rejected_by_source"] != {"osc": 1, "mqtt": 1, "web": 2}:
                    stats = await next_message(ws, "stats")
            return answer["kind"], status, stats

    with running_panel(three_sources(vmc.port, osc_port, mosquitto.port)) as (bridge, panel):
        wait_for_mqtt(bridge)
        send_osc(osc_port, osc("/vad", 0.1, 0.2))  # osc.arity: two values, not three
        send_osc(osc_port, osc("/vad", 0.1, 0.2, 0.3))
        mosquitto.publish_sync([("vadbridge/default/vad", b"{not json")])  # mqtt.json
        wait_until(lambda: rejected_by_source(bridge).keys() >= {"osc", "mqtt"},
                   "the OSC and MQTT rejections")
        kind, status, stats = asyncio.run(drive(panel))
        snapshot = bridge.input_stats.snapshot()
    assert (kind, status) == ("web.unknown", 403)
    assert snapshot["rejected_by_source"] == {"osc": 1, "mqtt": 1, "web": 2}
    assert snapshot["rejected"] == {"osc.arity": 1, "mqtt.json": 1, "web.unknown": 1,
                                    "web.origin": 1}
    assert snapshot["accepted"] == {"osc": 1}
    # What the page shows: each source's accepted and rejected inputs since start.
    assert stats["totals"]["accepted"] == {"osc": 1}
    assert stats["totals"]["rejected_by_source"] == {"osc": 1, "mqtt": 1, "web": 2}
    assert "rejected_by_source" in stats["inputs"]  # and per interval (values: timing's)


def test_a_kind_every_source_shares_is_told_apart_by_source(
    vmc: UdpReceiver, mosquitto: Mosquitto,
) -> None:
    """``avatar.limit`` from OSC, MQTT and the page: one kind, three sources."""
    osc_port = free_port(socket.SOCK_DGRAM)

    async def from_the_page(panel: ControlPanel) -> str:
        async with page(panel) as ws:
            await send(ws, type="emotion", emotion="joy", avatar="stranger")
            return str((await next_message(ws, "rejected"))["kind"])

    config = three_sources(vmc.port, osc_port, mosquitto.port, "avatars: {accept_new: false}")
    with running_panel(config) as (bridge, panel):
        wait_for_mqtt(bridge)
        send_osc(osc_port, osc("/avatar/stranger/vad", 0.1, 0.2, 0.3))
        mosquitto.publish_sync([("vadbridge/stranger/vad", b"0.1 0.2 0.3")])
        assert asyncio.run(from_the_page(panel)) == "avatar.limit"
        wait_until(lambda: rejected_by_source(bridge) == {"osc": 1, "mqtt": 1, "web": 1},
                   "one avatar.limit per source")
        assert bridge.input_stats.snapshot()["rejected"] == {"avatar.limit": 3}


def test_the_bridge_charges_a_refused_avatar_to_the_source_that_sent_it(
    vmc: UdpReceiver, mosquitto: Mosquitto,
) -> None:
    """A source without its own admission check passes the sample on; the avatar table refuses
    it and the bridge counts that rejection under the source's name (and the source counted the
    input as accepted: docs/DESIGN.md, "Core types")."""
    osc_port = free_port(socket.SOCK_DGRAM)

    def without_admission(bridge: Bridge) -> None:
        for source in bridge.sources:  # OSC and MQTT (no panel: running_bridge attaches none)
            source.admits = None  # type: ignore[attr-defined]

    config = three_sources(vmc.port, osc_port, mosquitto.port, "avatars: {accept_new: false}")
    with running_bridge(config, prepare=without_admission) as bridge:
        wait_for_mqtt(bridge)
        send_osc(osc_port, osc("/avatar/stranger/vad", 0.1, 0.2, 0.3))
        wait_until(lambda: rejected_by_source(bridge) == {"osc": 1}, "the OSC input's refusal")
        mosquitto.publish_sync([("vadbridge/stranger/vad", b"0.1 0.2 0.3")])
        wait_until(lambda: rejected_by_source(bridge) == {"osc": 1, "mqtt": 1},
                   "the MQTT input's refusal")
        snapshot = bridge.input_stats.snapshot()
    assert snapshot["accepted"] == {"osc": 1, "mqtt": 1}
    assert snapshot["rejected"] == {"avatar.limit": 2}
    assert "stranger" not in bridge.table.ids
