"""Issue 15's control-panel budgets: what pages, and a hostile client, cost the frame loop.

``python -m vadbridge.benchmarks.panel [--seconds 10] [--pages 20] [--fps 60] [--chromium]``
runs the real bridge (the bundled model, one VMC output to a receiver process, the panel on a
free loopback port, the real ``FramePacer`` recording each frame's lateness) for each scenario:

- ``no pages``: the panel serving nobody (the reference);
- ``N pages``: N WebSocket clients that behave like the page, in another process: each reads
  every face (30 a second) and stats update, and one drags the pad (30 messages a second), so
  the face changes and is re-inferred every frame;
- ``N pages + hostile client``: the same, plus one client sending malformed JSON, valid
  messages past the rate limit (10,000 a second in all) and 1 MB frames (each closes its
  connection: it reconnects and sends another);
- ``N chromium tabs`` (``--chromium``): the real page in N tabs of Debian's headless chromium.

The clients run in a process of their own at the lowest CPU priority (nice 19), so that on a
small machine the bridge's lateness measures what the pages cost it, not how the kernel shares
the cores with the load generator.

It prints the frames' lateness (p50, p99, max: ms after the deadline at which the frame began),
the frames skipped, the clients' received updates, the hostile client's counts, and the cost of
building one face update (and, for comparison, of the preview's face geometry in Python, which
the page computes itself instead), with met/MISSED against p99 < 1 ms for the pages and < 2 ms
during the flood. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from vadbridge.benchmarks.harness import (
    ReceiverProcess,
    Result,
    format_table,
    percentile,
    renice_descendants,
)

PAGES_P99_MS = 1.0
FLOOD_P99_MS = 2.0
FLOOD_PER_S = 10_000
HUGE_FRAME_BYTES = 1 << 20
PAD_PER_S = 30
_READY = "ready"
GENERATOR_NICENESS = 19
_CONNECT_TIMEOUT_S = 15.0


@dataclass
class Scenario:
    name: str
    pages: int
    hostile: bool
    chromium: bool = False  # the pages are tabs of a headless chromium, not aiohttp clients
    lateness_s: list[float] = field(default_factory=list)
    skipped: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    seconds: float = 0.0
    clients: dict[str, Any] = field(default_factory=dict)

    def results(self) -> list[Result]:
        rows = [Result("panel", self.name, f"lateness p{q}", percentile(self.lateness_s, q) * 1e3,
                       "ms") for q in (50, 99)]
        rows += [Result("panel", self.name, "lateness max", max(self.lateness_s) * 1e3, "ms"),
                 Result("panel", self.name, "frames skipped", self.skipped, "frames")]
        if self.chromium:
            rows.append(Result("panel", self.name, "tabs connected at the end",
                               self.clients.get("connected", 0), "tabs"))
        elif self.pages:
            rows.append(Result("panel", self.name, "face updates per page",
                               self.clients.get("faces_per_page_per_s", 0.0), "/s"))
        if self.hostile:
            written = self.clients.get("flood_sent", 0) / self.clients.get("seconds", 1.0)
            read = (self.accepted + sum(self.rejected.values())) / self.seconds
            rows += [
                Result("panel", self.name, "hostile messages written (client side)", written,
                       "/s"),
                Result("panel", self.name, "messages read by the panel (all pages)", read, "/s"),
                Result("panel", self.name, "hostile 1 MB frames sent",
                       self.clients.get("huge_sent", 0), "frames"),
            ]
            rows += [Result("panel", self.name, f"counted {kind}", count, "messages")
                     for kind, count in sorted(self.rejected.items())]
        return rows


def _config_text(receiver_port: int) -> str:
    return (f"inputs: []\nstats_interval_s: 0\n"
            f"outputs: [{{type: vmc, host: 127.0.0.1, port: {receiver_port}}}]\n"
            f"web: {{enabled: true, messages_per_s: 100}}\n")


async def _measure(scenario: Scenario, *, fps: int, seconds: float, receiver_port: int) -> None:
    from vadbridge.benchmarks.scenario import RecordingPacer
    from vadbridge.config import parse_config
    from vadbridge.reload import Reloader
    from vadbridge.scheduling import freeze_startup_objects
    from vadbridge.web import attach_panel
    from vadbridge.wiring import build_bridge

    config = parse_config(_config_text(receiver_port) + f"frame_rate: {fps}\n", "<benchmark>")
    # Port 0: a free one the kernel picks (the config accepts only ports a user can name).
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))
    bridge = build_bridge(config)
    panel = attach_panel(bridge, config, Reloader(bridge, None, config))
    pacer = RecordingPacer(1.0 / fps)
    bridge.pacer = pacer
    await panel.start()
    freeze_startup_objects()
    running = asyncio.create_task(bridge.run())
    client = None
    try:
        if scenario.pages or scenario.hostile:
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "vadbridge.benchmarks.panel", "--client",
                f"ws://127.0.0.1:{panel.port}/ws", "--pages", str(scenario.pages),
                "--seconds", str(seconds), *(["--hostile"] if scenario.hostile else []),
                *(["--chromium"] if scenario.chromium else []),
                stdout=asyncio.subprocess.PIPE,
            )
            assert client.stdout is not None
            # The load generator (21 clients, 10,000 messages a second, 1 MB frames masked in
            # Python) needs most of a core; on a 2-core machine at equal priority the bridge's
            # lateness would measure how the kernel shares the cores with it, not what the
            # flood does to the bridge. A hostile page elsewhere costs the bridge only its
            # messages, so the generator runs at the lowest priority (it still sends at full
            # rate when a core is free: "messages written" in the table says what it achieved).
            os.setpriority(os.PRIO_PROCESS, client.pid, GENERATOR_NICENESS)
            line = await asyncio.wait_for(
                client.stdout.readline(),
                _CONNECT_TIMEOUT_S * (4 if scenario.chromium else 1))  # 20 tabs take a while
            if line.decode().strip() != _READY:
                raise RuntimeError(f"the clients did not connect: {line!r}")
        await asyncio.sleep(0.5)  # settle: connections made, first updates sent
        before = bridge.input_stats.snapshot()
        skipped_before = pacer.stats.skipped
        del pacer.lateness_s[:]
        await asyncio.sleep(seconds)
        scenario.lateness_s = list(pacer.lateness_s)
        scenario.skipped = pacer.stats.skipped - skipped_before
        scenario.seconds = seconds
        after = bridge.input_stats.snapshot()
        rejected_before = before["rejected"]
        scenario.rejected = {kind: count - rejected_before.get(kind, 0)
                             for kind, count in after["rejected"].items()
                             if count > rejected_before.get(kind, 0)}
        scenario.accepted = (after["accepted"].get("web", 0)
                             - before["accepted"].get("web", 0))
        if client is not None:
            output, _ = await asyncio.wait_for(client.communicate(), seconds + _CONNECT_TIMEOUT_S)
            scenario.clients = json.loads(output.decode().splitlines()[-1])
    finally:
        if client is not None and client.returncode is None:
            client.kill()
            await client.wait()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


# --- the clients (another process) --------------------------------------------------------------


async def _page(session: aiohttp.ClientSession, url: str, stop: asyncio.Event,
                counts: dict[str, int], *, drag: bool) -> None:
    async with session.ws_connect(url) as ws:
        counts["connected"] += 1

        async def read() -> None:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT and message.data.startswith(
                        '{"type":"face"'):
                    counts["faces"] += 1

        reader = asyncio.create_task(read())
        step = 0
        while not stop.is_set():
            if drag:  # a slow circle on the pad
                step += 1
                angle = step * 0.05
                await ws.send_str(json.dumps({"type": "vad", "valence": round(np.cos(angle), 3),
                                              "arousal": round(np.sin(angle), 3)}))
            await asyncio.sleep(1 / PAD_PER_S)
        reader.cancel()


async def _flood(session: aiohttp.ClientSession, url: str, stop: asyncio.Event,
                 counts: dict[str, int]) -> None:
    """Valid messages past the limit and malformed JSON: FLOOD_PER_S in batches of 100."""
    good, bad = '{"type":"vad","valence":0.1}', '{"type": "vad", "valence": 0.1'
    async with session.ws_connect(url) as ws:
        counts["connected"] += 1
        start = time.monotonic()
        while not stop.is_set():
            for index in range(100):
                await ws.send_str(bad if index % 10 == 0 else good)
            counts["flood_sent"] += 100
            ahead_s = counts["flood_sent"] / FLOOD_PER_S - (time.monotonic() - start)
            await asyncio.sleep(max(0.0, ahead_s))


async def _huge_frames(session: aiohttp.ClientSession, url: str, stop: asyncio.Event,
                       counts: dict[str, int]) -> None:
    frame = json.dumps({"type": "emotion", "emotion": "x" * HUGE_FRAME_BYTES})
    while not stop.is_set():
        try:
            async with session.ws_connect(url) as ws:
                await ws.send_str(frame)
                counts["huge_sent"] += 1
                await ws.receive()  # the close (1009)
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)


async def _clients(url: str, pages: int, hostile: bool, seconds: float) -> dict[str, Any]:
    counts = {"connected": 0, "faces": 0, "flood_sent": 0, "huge_sent": 0}
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(_page(session, url, stop, counts, drag=index == 0))
                 for index in range(pages)]
        if hostile:
            tasks.append(asyncio.create_task(_flood(session, url, stop, counts)))
        expected = pages + (1 if hostile else 0)
        while counts["connected"] < expected:
            await asyncio.sleep(0.01)
        if hostile:
            tasks.append(asyncio.create_task(_huge_frames(session, url, stop, counts)))
        print(_READY, flush=True)
        await asyncio.sleep(0.5)
        counts["faces"] = counts["flood_sent"] = counts["huge_sent"] = 0
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait(tasks, timeout=5)
    return {**counts, "seconds": seconds,
            "faces_per_page_per_s": counts["faces"] / max(pages, 1) / seconds}


def _chromium_tabs(url: str, pages: int, seconds: float) -> dict[str, Any]:
    """``pages`` tabs of the system's headless chromium on the panel, open for ``seconds``.
    Each tab is the real page: it connects, receives every face and stats update and draws
    them (a background tab draws less often: the updates still arrive). As in the ``pages``
    scenario, a client drags the pad 30 times a second, so the face changes every frame."""
    import threading

    from vadbridge.tools.panel_screenshot import headless_chromium, wait_for

    async def drag(stop: threading.Event) -> None:
        counts = {"connected": 0, "faces": 0}
        done = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(_page(session, url, done, counts, drag=True))
            while not stop.is_set():
                await asyncio.sleep(0.05)
            done.set()
            await asyncio.wait_for(task, 5)

    stop = threading.Event()
    dragger = threading.Thread(target=lambda: asyncio.run(drag(stop)), daemon=True)
    dragger.start()
    page_url = url.replace("ws://", "http://").removesuffix("/ws") + "/"
    with headless_chromium() as driver:
        for index in range(pages):
            if index:
                driver.switch_to.new_window("tab")
            driver.get(page_url)
            wait_for(driver, lambda d: d.find_element("id", "status").text == "connected",
                     f"tab {index + 1} to connect")
        print(_READY, flush=True)
        end = time.monotonic() + 0.5 + seconds
        while time.monotonic() < end:  # new threads and re-prioritised ones too
            renice_descendants(os.getpid(), GENERATOR_NICENESS)
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        connected = 0
        for handle in driver.window_handles:
            driver.switch_to.window(handle)
            connected += driver.find_element("id", "status").text == "connected"
    stop.set()
    dragger.join(10)
    return {"connected": connected, "tabs": pages, "seconds": seconds}


# --- costs per update ---------------------------------------------------------------------------


def update_costs() -> list[Result]:
    """One face update's JSON (done once per update, whatever the number of pages), and the
    preview's face geometry in Python, which the page computes itself instead."""
    from vadbridge.benchmarks.harness import median_time_s
    from vadbridge.tools.preview_face import face_geometry
    from vadbridge.web import Face
    from vadbridge.web.messages import face_message

    weights = np.random.default_rng(0).uniform(0, 1, 52).astype(np.float32)
    face = Face(weights, np.array([0.1, 0.2, 0.3], np.float32), np.zeros(3, np.float32))
    encode_s = median_time_s(lambda: face_message("default", face), 2000)
    geometry_s = median_time_s(lambda: face_geometry(weights), 500)
    return [Result("panel", "one face update", "JSON encode (shared by all pages)", encode_s * 1e6,
                   "µs"),
            Result("panel", "one face update", "face geometry in Python (not done: the page "
                   "draws it)", geometry_s * 1e6, "µs")]


def scenarios(pages: int, *, chromium: bool = False) -> list[Scenario]:
    found = [Scenario("no pages", 0, False), Scenario(f"{pages} pages", pages, False),
             Scenario(f"{pages} pages + hostile client", pages, True)]
    if chromium:
        found.append(Scenario(f"{pages} chromium tabs", pages, False, chromium=True))
    return found


def verdicts(results: list[Scenario]) -> list[str]:
    lines = []
    for scenario in results[1:]:
        limit = FLOOD_P99_MS if scenario.hostile else PAGES_P99_MS
        p99 = percentile(scenario.lateness_s, 99) * 1e3
        lines.append(f"{scenario.name}: lateness p99 {p99:.3f} ms, target < {limit:g} ms: "
                     f"{'met' if p99 < limit else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)  # the clients' process
    parser.add_argument("--hostile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chromium", action="store_true",
                        help="also measure with the pages as tabs of Debian's headless chromium")
    args = parser.parse_args(argv)
    if args.client:
        if args.chromium:
            print(json.dumps(_chromium_tabs(args.client, args.pages, args.seconds)), flush=True)
            return
        summary = asyncio.run(_clients(args.client, args.pages, args.hostile, args.seconds))
        print(json.dumps(summary), flush=True)
        return
    import logging

    from vadbridge.scheduling import limit_blas_threads

    logging.basicConfig(level=logging.ERROR)  # the flood's "rejected input" lines: counted
    limit_blas_threads(1)
    receiver = ReceiverProcess()
    done = []
    try:
        for scenario in scenarios(args.pages, chromium=args.chromium):
            print(f"# {scenario.name} ...", file=sys.stderr, flush=True)
            asyncio.run(_measure(scenario, fps=args.fps, seconds=args.seconds,
                                 receiver_port=receiver.port))
            done.append(scenario)
    finally:
        receiver.close()
    results = [row for scenario in done for row in scenario.results()] + update_costs()
    print(format_table(results))
    print()
    for line in verdicts(done):
        print(line)


if __name__ == "__main__":
    main()
