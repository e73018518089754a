"""The control panel's server against a real bridge, over real sockets (issue 15): what a page gets,
what its inputs do, and what a hostile client cannot do. Timing goals live in
``vadbridge.benchmarks.panel``; these tests check behaviour and wait for it, never on time."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import aiohttp
import pytest
from bridge_harness import UdpReceiver, vmc_frame_values, wait_until
from panel_harness import next_message, page, panel_config, running_panel, send, ws_url

from vadbridge.core.stats import format_stats_line, interval_counts
from vadbridge.daemon import Bridge
from vadbridge.web import ControlPanel

SMILE = "MouthSmileLeft"


def rejected(bridge: Bridge, kind: str) -> int:
    return int(bridge.input_stats.snapshot()["rejected"].get(kind, 0))


def accepted_web(bridge: Bridge) -> int:
    return int(bridge.input_stats.snapshot()["accepted"].get("web", 0))


def http_get(panel: ControlPanel, path: str, headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], bytes]:
    async def get() -> tuple[int, dict[str, str], bytes]:
        async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{panel.port}{path}", headers=headers
        ) as response:
            return response.status, dict(response.headers), await response.read()

    return asyncio.run(get())


def ws_status(panel: ControlPanel, url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status a WebSocket request gets (101 = upgraded)."""
    async def attempt() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, headers=headers):
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

    return asyncio.run(attempt())


def test_the_page_and_its_assets_are_served_with_a_strict_policy(vmc: UdpReceiver) -> None:
    with running_panel(panel_config(vmc.port)) as (_bridge, panel):
        status, headers, body = http_get(panel, "/")
        assert status == 200 and b'<script type="module" src="/panel.js">' in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        for asset, kind in (("panel.js", "text/javascript"), ("face.js", "text/javascript"),
                            ("panel.css", "text/css")):
            status, headers, _ = http_get(panel, f"/{asset}")
            assert status == 200 and headers["Content-Type"].startswith(kind)
        for path in ("/static/panel.js", "/../pyproject.toml", "/%2e%2e/etc/passwd",
                     "/index.html/x", "/__init__.py"):
            assert http_get(panel, path)[0] == 404, path


def test_a_page_gets_hello_then_the_face_and_the_stats(vmc: UdpReceiver) -> None:
    async def scenario(panel: ControlPanel) -> None:
        async with page(panel) as ws:
            face = await next_message(ws, "face")
            assert face["avatar"] == "default" and len(face["w"]) == 52
            assert face["vad"] == [0, 0, 0] and face["target"] == [0, 0, 0]
            stats = await next_message(ws, "stats")
            assert stats["avatars"] == ["default"] and stats["panel"]["clients"] == 1
            assert stats["outputs"][0]["name"].startswith("vmc 127.0.0.1")

    with running_panel(panel_config(vmc.port)) as (_bridge, panel):
        asyncio.run(scenario(panel))


def test_an_emotion_from_the_page_is_a_web_input_that_reaches_the_output(
    vmc: UdpReceiver,
) -> None:
    async def scenario(panel: ControlPanel) -> None:
        async with page(panel) as ws:
            await send(ws, type="emotion", emotion="happiness", intensity=1)
            while (await next_message(ws, "face"))["w"][43] < 0.5:  # mouthSmileLeft
                pass

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        asyncio.run(scenario(panel))
        assert accepted_web(bridge) == 1
        assert vmc_frame_values(vmc.receive(0.2)[-1][1])[SMILE] > 0.5
        now = bridge.stats_snapshot()
        assert "accepted web=1" in format_stats_line(interval_counts(now, {"inputs": {}}), 1.0)


def test_the_pad_moves_the_target_and_partial_updates_keep_the_other_axes(
    vmc: UdpReceiver,
) -> None:
    async def scenario(panel: ControlPanel) -> None:
        async with page(panel) as ws:
            await send(ws, type="vad", valence=0.5, arousal=-0.5)
            await send(ws, type="vad", dominance=0.25)
            while (await next_message(ws, "face"))["target"] != [0.5, -0.5, 0.25]:
                pass

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        asyncio.run(scenario(panel))
        assert accepted_web(bridge) == 2


def test_bad_messages_are_counted_by_kind_and_answered(vmc: UdpReceiver) -> None:
    async def scenario(panel: ControlPanel) -> list[dict[str, str]]:
        replies = []
        async with page(panel) as ws:
            for text in ("{oops", '{"type": "dance"}', '{"type": "emotion", "emotion": "glee"}',
                         '{"type": "vad", "avatar": "bad id", "valence": 1}'):
                await ws.send_str(text)
                replies.append(await next_message(ws, "rejected"))
            await ws.send_bytes(b"\x00\x01")
            await send(ws, type="emotion", emotion="joy")  # still served after all that
            await next_message(ws, "face")
        return replies

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        replies = asyncio.run(scenario(panel))
        assert [reply["kind"] for reply in replies] == [
            "web.json", "web.unknown", "emotion.unknown", "web.avatar"]
        assert "unknown emotion 'glee'" in replies[2]["reason"]
        wait_until(lambda: accepted_web(bridge) == 1, "the good input")
        for kind in ("web.json", "web.unknown", "emotion.unknown", "web.avatar", "web.binary"):
            assert rejected(bridge, kind) == 1, kind


def test_a_message_over_the_size_cap_closes_that_connection_and_is_counted(
    vmc: UdpReceiver,
) -> None:
    async def scenario(panel: ControlPanel) -> int | None:
        async with page(panel) as ws:
            await ws.send_str(json.dumps({"type": "emotion", "emotion": "x" * 5000}))
            while (await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
            return ws.close_code

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        assert asyncio.run(scenario(panel)) == 1009  # "message too big"
        wait_until(lambda: rejected(bridge, "oversize") == 1, "the oversize count")
        wait_until(lambda: not panel.clients, "the connection to be gone")


def test_a_flood_is_limited_and_counted_while_frames_keep_flowing(vmc: UdpReceiver) -> None:
    """Past a second's budget the panel stops reading the page for a while (TCP holds the
    sender back), then reads and counts on: every message is counted, most as over the limit."""
    flood = 2000

    async def scenario(panel: ControlPanel) -> None:
        async with page(panel) as ws:
            for _ in range(flood):
                await ws.send_str('{"type": "vad", "valence": 0.1}')

    with running_panel(panel_config(vmc.port, web="messages_per_s: 50")) as (bridge, panel):
        frames_before = bridge.pacer.stats.frames
        vmc.drain()
        asyncio.run(scenario(panel))
        wait_until(lambda: accepted_web(bridge) + rejected(bridge, "web.rate_limit") == flood,
                   "every message of the flood to be counted", timeout_s=60)
        assert rejected(bridge, "web.rate_limit") > flood * 0.5
        assert bridge.pacer.stats.frames > frames_before
        assert vmc.receive(0.2), "frames stopped"


def test_a_page_of_another_site_cannot_connect(vmc: UdpReceiver) -> None:
    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        url = ws_url(panel)
        assert ws_status(panel, url, {"Origin": "http://evil.example"}) == 403
        assert ws_status(panel, url, {"Origin": f"http://127.0.0.1:{panel.port}"}) == 101
        assert rejected(bridge, "web.origin") == 1


def test_without_a_token_only_loopback_host_names_are_answered(vmc: UdpReceiver) -> None:
    """A DNS-rebinding page (evil.example resolving to 127.0.0.1) names its own host."""
    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        assert http_get(panel, "/", {"Host": f"evil.example:{panel.port}"})[0] == 403
        assert http_get(panel, "/", {"Host": f"localhost:{panel.port}"})[0] == 200
        assert rejected(bridge, "web.host") == 1


def test_with_a_token_a_websocket_needs_it(vmc: UdpReceiver,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANEL_TOKEN", "s3cret-token-of-enough-length")
    config = panel_config(vmc.port, web="token_env: PANEL_TOKEN")
    with running_panel(config) as (bridge, panel):
        assert panel.token == "s3cret-token-of-enough-length" and not panel.generated_token
        assert panel.url.endswith("/#token=s3cret-token-of-enough-length")
        assert ws_status(panel, ws_url(panel, "")) == 401
        assert ws_status(panel, ws_url(panel, "s3cret-token-of-enough-lengtX")) == 401
        assert ws_status(panel, ws_url(panel, panel.token)) == 101
        assert rejected(bridge, "web.auth") == 2


def test_more_pages_than_max_clients_are_refused(vmc: UdpReceiver) -> None:
    async def scenario(panel: ControlPanel) -> int:
        async with page(panel), page(panel):
            return await asyncio.to_thread(ws_status, panel, ws_url(panel))

    with running_panel(panel_config(vmc.port, web="max_clients: 2")) as (bridge, panel):
        assert asyncio.run(scenario(panel)) == 503
        assert rejected(bridge, "web.clients") == 1


def test_a_page_watches_another_avatar(vmc: UdpReceiver) -> None:
    async def scenario(panel: ControlPanel) -> dict[str, str]:
        async with page(panel) as ws:
            await send(ws, type="watch", avatar="npc")
            while (await next_message(ws, "face"))["avatar"] != "npc":
                pass
            await send(ws, type="watch", avatar="nobody")
            return await next_message(ws, "rejected")

    config = panel_config(vmc.port, "avatars: {ids: [default, npc]}\n")
    with running_panel(config) as (_bridge, panel):
        assert "no avatar 'nobody'" in asyncio.run(scenario(panel))["reason"]


def test_tuning_applies_through_the_reload_path_and_a_refusal_says_why(
    vmc: UdpReceiver,
) -> None:
    async def scenario(panel: ControlPanel) -> tuple[dict[str, object], dict[str, object]]:
        async with page(panel) as ws, page(panel) as other:
            await send(ws, type="tune", smoothing={"attack_ms": 80})
            applied = await next_message(ws, "tuned")
            assert (await next_message(other, "settings"))["settings"] == applied["settings"]
            await send(ws, type="tune", smoothing={"attack_ms": -5})
            return applied, await next_message(ws, "tuned")

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        applied, refused = asyncio.run(scenario(panel))
        assert applied["error"] is None
        assert bridge.animator.tau_s.face.attack_s == pytest.approx(0.08)  # type: ignore[union-attr]
        assert refused["error"] == "smoothing.attack_ms: expected a number >= 0, got -5"
        assert bridge.animator.tau_s.face.attack_s == pytest.approx(0.08)  # type: ignore[union-attr]


def test_liveliness_turns_on_and_off_from_the_page(vmc: UdpReceiver) -> None:
    async def scenario(panel: ControlPanel, blink: bool) -> dict[str, object]:
        async with page(panel) as ws:
            await send(ws, type="tune", liveliness={"blink": blink})
            return await next_message(ws, "tuned")

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        assert bridge.liveliness is None
        assert asyncio.run(scenario(panel, True))["error"] is None
        assert bridge.liveliness is not None and bridge.liveliness.config.blink
        assert asyncio.run(scenario(panel, False))["error"] is None
        assert bridge.liveliness is None


def test_a_tune_message_may_change_only_smoothing_and_liveliness(vmc: UdpReceiver) -> None:
    async def scenario(panel: ControlPanel) -> dict[str, str]:
        async with page(panel) as ws:
            await send(ws, type="tune", outputs={"host": "10.0.0.1"})
            return await next_message(ws, "rejected")

    with running_panel(panel_config(vmc.port)) as (_bridge, panel):
        reply = asyncio.run(scenario(panel))
        assert reply["kind"] == "web.shape" and "'outputs'" in reply["reason"]


def test_save_writes_beside_the_running_config_and_takes_no_path(
    vmc: UdpReceiver, tmp_path: Path,
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"inputs: []\noutputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]\n"
                    "web: {enabled: true}\n")

    async def scenario(panel: ControlPanel) -> tuple[dict[str, str], dict[str, str]]:
        async with page(panel) as ws:
            await send(ws, type="save", path="/etc/passwd")
            refused = await next_message(ws, "rejected")
            await send(ws, type="tune", smoothing={"release_ms": 500})
            await next_message(ws, "tuned")
            await send(ws, type="save")
            return refused, await next_message(ws, "saved")

    from vadbridge.config import load_config

    config = load_config(path)
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))
    with running_panel(config, path) as (_bridge, panel):
        refused, saved = asyncio.run(scenario(panel))
    assert refused["kind"] == "web.shape" and "no file names, no paths" in refused["reason"]
    assert saved == {"type": "saved", "error": None, "written": "bridge.panel.yaml",
                     "backup": None}
    assert load_config(tmp_path / "bridge.panel.yaml").smoothing.release_ms == 500.0


def test_pages_are_told_going_away_when_the_bridge_stops(vmc: UdpReceiver) -> None:
    closed: list[int | None] = []

    async def watch(url: str) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            while (await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
            closed.append(ws.close_code)

    with running_panel(panel_config(vmc.port)) as (_bridge, panel):
        import threading

        watcher = threading.Thread(target=asyncio.run, args=(watch(ws_url(panel)),))
        watcher.start()
        wait_until(lambda: len(panel.clients) == 1, "the page to connect")
    watcher.join(10)
    assert closed == [1001]


def test_with_no_page_connected_the_updates_task_sleeps_until_one_connects(
    vmc: UdpReceiver,
) -> None:
    """Updates have readers only while a page is connected: with none, the task that sends
    them does not wake 30 times a second (it waits for a page), and a page that connects gets
    faces at once; after it leaves, the task sleeps again."""
    with running_panel(panel_config(vmc.port)) as (_bridge, panel):
        wakes: list[float] = []
        slack = panel.backend.seconds_to_slack

        def counted(wait_s: float) -> float:
            wakes.append(wait_s)
            return slack(wait_s)

        panel.backend.seconds_to_slack = counted  # type: ignore[method-assign]
        time.sleep(0.5)
        assert wakes == []  # was ~15 in half a second

        async def one_face() -> dict[str, object]:
            async with page(panel) as ws:
                return await next_message(ws, "face")

        assert asyncio.run(one_face())["avatar"] == "default"
        assert wakes  # the page's updates were paced as before
        wait_until(lambda: not panel.clients, "the page to be gone")
        time.sleep(0.1)  # the task's last round after the page left
        woken = len(wakes)
        time.sleep(0.5)
        assert len(wakes) <= woken + 1
