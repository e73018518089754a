"""A real bridge with its control panel on a free loopback port (``running_panel``), and
WebSocket clients that speak to it as the page does (aiohttp's client)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from bridge_harness import TIMEOUT_S, running_bridge

from vadbridge.config import BridgeConfig, parse_config
from vadbridge.daemon import Bridge
from vadbridge.reload import Reloader
from vadbridge.web import ControlPanel, attach_panel


def panel_config(vmc_port: int, extra: str = "", *, web: str = "") -> BridgeConfig:
    """No inputs but the panel, one VMC output to ``vmc_port``. The panel listens on a port the
    kernel picks (0, which only a test can ask for) unless ``web`` names one."""
    config = parse_config(
        f"inputs: []\nstats_interval_s: 0\noutputs: [{{type: vmc, host: 127.0.0.1, "
        f"port: {vmc_port}}}]\nweb: {{enabled: true{', ' + web if web else ''}}}\n" + extra,
        "<test>")
    if "port:" in web:
        return config
    return dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))


@contextmanager
def running_panel(config: BridgeConfig, config_path: Path | None = None
                  ) -> Iterator[tuple[Bridge, ControlPanel]]:
    """The bridge of ``config`` with its panel attached, as ``vadbridge run`` does; changes from
    the page go through a ``Reloader`` of ``config_path`` (None: nothing to save beside)."""
    panels: list[ControlPanel] = []

    def attach(bridge: Bridge) -> None:
        panels.append(attach_panel(bridge, config, Reloader(bridge, config_path, config)))

    with running_bridge(config, prepare=attach) as bridge:
        yield bridge, panels[0]


def ws_url(panel: ControlPanel, token: str | None = None) -> str:
    query = f"?token={token}" if token is not None else ""
    return f"ws://127.0.0.1:{panel.port}/ws{query}"


@asynccontextmanager
async def page(
    panel: ControlPanel, *, token: str | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A WebSocket as the page opens it (its first message, hello, already read)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(
        ws_url(panel, token if token is not None else panel.token), headers=headers,
        timeout=aiohttp.ClientWSTimeout(ws_close=2.0), autoping=True,
    ) as ws:
        hello = await next_message(ws, "hello")
        assert len(hello["names"]) == 52
        yield ws


async def next_message(ws: aiohttp.ClientWebSocketResponse, kind: str,
                       timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped)."""
    async with asyncio.timeout(timeout_s):
        while True:
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"connection ended waiting for {kind!r}: {message}")
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == kind:
                return data


async def send(ws: aiohttp.ClientWebSocketResponse, **message: Any) -> None:
    await ws.send_str(json.dumps(message))
