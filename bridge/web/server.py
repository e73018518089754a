"""The control panel's server: one page and one WebSocket, served by aiohttp on the bridge's loop.

The panel is a source to the bridge (``name``, ``start``, ``run``): ``vadbridge run`` binds it
with the other listeners, and the bridge runs and supervises it. Its inputs are counted as
source ``web`` and go through the same checks as OSC's and MQTT's (parse, avatar admission,
``limits.rate_limit_per_source`` per sender address), then to the bridge's ``on_sample``.

Cost to the frame loop: none per frame. A separate task wakes ``web.fps`` times a second, builds
each watched avatar's face update once (one JSON text for every page watching it) and posts it
to each page's outbox; each page's own task sends it (``clients.Client``). A page's messages are
read by its own task, which yields to the loop after each one, so a flooding page delays a frame
by at most one message's handling (docs/performance.md, "Control panel").

Who may connect (docs/security.md, "Control panel"): the page itself needs nothing; the
WebSocket needs the token when there is one (``?token=``), an ``Origin`` (when a browser sends
one) naming this very server, so another site open in the browser cannot drive the face, and,
without a token, a ``Host`` that is a loopback name (a DNS-rebinding page names its own).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

import vadbridge.web.messages as messages  # not `from vadbridge.web`: its __init__ imports us
from vadbridge.config import WebConfig, is_loopback
from vadbridge.core.stats import InputStats, show
from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs import WEB_INPUT_TYPES, decode_message, input_avatar, parse_web_input
from vadbridge.inputs.admission import RateLimiter
from vadbridge.inputs.values import check_avatar
from vadbridge.web.backend import PanelBackend
from vadbridge.web.clients import Client
from vadbridge.web.tuning import TUNABLE

__all__ = ["ASSETS", "ControlPanel", "page_address"]

log = logging.getLogger("vadbridge.web")

SOURCE = "web"
STATS_INTERVAL_S = 0.5
HEARTBEAT_S = 10.0  # a page that stops answering pings is dropped after this (and as long)
CLOSE_TIMEOUT_S = 1.0  # closing a page waits this long for its answer at most
FLOOD_PAUSE_S = 0.1  # a page over its budget by a second's worth is not read for this long
ASSETS: Mapping[str, str] = {
    "index.html": "text/html", "panel.js": "text/javascript", "face.js": "text/javascript",
    "panel.css": "text/css",
}
# Everything the page loads or connects to is this server; no inline script, no framing by
# other sites. 'self' covers ws: only in newer browsers, so the page's own ws:// origin is
# named too (docs/references.md, "Control panel").
_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self' ws://{host}; frame-ancestors 'none'; base-uri 'none'; "
           "form-action 'none'")
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store"}
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _load_assets() -> dict[str, bytes]:
    folder = importlib.resources.files("vadbridge.web").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in ASSETS}


def page_address(host: str, port: int) -> str:
    """The page's address for a listener on ``host:port`` (an IPv6 host in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8800`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


class ControlPanel:
    """Serves the panel for ``backend`` on ``config.host:config.port``.

    ``token``: the one the WebSocket needs; default the config's, or, when the config names
    none and the host is not loopback, a random one (``generated_token`` says so; ``vadbridge
    run`` prints it). ``input_limiter``: the bridge's per-source rate limit, keyed by sender
    address. Rejected messages are counted in ``stats`` under ``web.*`` kinds.
    """

    kind = SOURCE

    def __init__(self, config: WebConfig, backend: PanelBackend, stats: InputStats, *,
                 input_limiter: RateLimiter | None = None, token: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.backend = backend
        self.stats = stats
        self.input_limiter = input_limiter
        self.host = config.host
        self.port = config.port
        self.name = f"web {config.host}:{config.port}"
        self.token = token if token is not None else config.token
        self.generated_token = self.token is None and config.needs_token
        if self.generated_token:
            self.token = secrets.token_urlsafe(24)
        self.clients: set[Client] = set()
        self._watched = asyncio.Event()  # set while a page is connected: updates have readers
        self.dropped_updates = 0  # face and stats updates a slow page skipped (closed pages)
        self._clock = clock
        self._assets = _load_assets()
        self._runner: web.AppRunner | None = None
        self._on_sample: Callable[[VadSample], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flood_messages = max(1, round(config.messages_per_s))

    @property
    def address(self) -> str:
        return page_address(self.host, self.port)

    @property
    def url(self) -> str:
        """The page's address; with the token in the fragment, which a browser never sends."""
        return self.address + (f"#token={self.token}" if self.token else "")

    # --- the source interface ------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listener; ``OSError`` naming the panel if the address is unusable."""
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._guard], client_max_size=1024)
        app.router.add_get("/", self._page)
        for name in ASSETS:
            if name != "index.html":
                app.router.add_get(f"/{name}", self._asset)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/favicon.ico", self._no_icon)  # browsers ask; the page has none
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:  # asyncio's own words name no listener: say which one
            await runner.cleanup()
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise OSError(error.errno, f"control panel {self.host}:{self.port}: {reason}"
                          ) from error
        self._runner = runner
        self.port = runner.addresses[0][1]
        self.name = f"web {self.host}:{self.port}"

    async def run(self, on_sample: Callable[[VadSample], None]) -> None:
        """Serve until cancelled, then close every page's connection and the listener."""
        await self.start()
        self._on_sample = on_sample
        try:
            await self._broadcast_forever()
        finally:
            self._on_sample = None
            await self.close()

    async def close(self) -> None:
        # "Going away" to every page at once (each waits CLOSE_TIMEOUT_S at most for its
        # answer): the page then reconnects by itself when the bridge is back.
        await asyncio.gather(*(
            client.socket.close(code=1001, message=b"vadbridge stopping")
            for client in list(self.clients) if isinstance(client.socket, web.WebSocketResponse)
        ), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT_S)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # --- HTTP ----------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if self.token is None and not is_loopback(_host_name(request.host)):
            self.stats.reject("web.host", f"request for host {show(request.host)}: this panel "
                              "answers loopback names only (it has no token)", source=SOURCE)
            return web.Response(status=403, text="forbidden: loopback names only\n")
        response: web.StreamResponse = await handler(request)
        return response

    async def _page(self, request: web.Request) -> web.Response:
        return self._serve_asset(request, "index.html")

    async def _no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _asset(self, request: web.Request) -> web.Response:
        return self._serve_asset(request, request.path.lstrip("/"))

    def _serve_asset(self, request: web.Request, name: str) -> web.Response:
        host = request.host if _PLAIN_HOST.fullmatch(request.host) else self.address[7:-1]
        return web.Response(body=self._assets[name], content_type=ASSETS[name], charset="utf-8",
                            headers={**_HEADERS, "Content-Security-Policy": _POLICY.format(
                                host=host)})

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Why this WebSocket request is refused, as the response; None = welcome."""
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
            self.stats.reject("web.origin", f"WebSocket from a page of {show(origin)}, not this "
                              "panel's: refused (another site cannot drive the face)",
                              source=SOURCE)
            return web.Response(status=403, text="forbidden: another site's page\n")
        if self.token is not None:
            given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                self.stats.reject("web.auth", f"WebSocket from {request.remote}: "
                                  f"{'wrong' if given else 'no'} token", source=SOURCE)
                return web.Response(status=401, text="unauthorized: token required\n")
        if len(self.clients) >= self.config.max_clients:
            self.stats.reject("web.clients", f"WebSocket from {request.remote}: "
                              f"{self.config.max_clients} pages are connected already",
                              source=SOURCE)
            return web.Response(status=503, text="too many pages connected\n")
        return None

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        socket = web.WebSocketResponse(
            max_msg_size=self.config.max_message_bytes, heartbeat=HEARTBEAT_S,
            timeout=CLOSE_TIMEOUT_S, compress=False,
        )
        await socket.prepare(request)
        client = Client(socket, request.remote or "?", messages_per_s=self.config.messages_per_s)
        self.clients.add(client)
        self._watched.set()
        writer = self._spawn(client.write_forever(), f"web page {client.number} writer")
        backend = self.backend
        client.reply(messages.hello_message(
            avatar=client.avatar, avatars=backend.avatars(), frame_rate=backend.frame_rate,
            fps=self._update_hz, settings=backend.settings(), save_target=backend.save_target,
        ))
        try:
            async for message in socket:
                self._received(client, message)
                if client.over_limit >= self._flood_messages:
                    # A second's budget dropped in a row: stop reading this page for a while.
                    # Its messages wait in the socket and TCP holds the sender back, so a
                    # flood costs the loop a bounded share however fast it is sent.
                    client.over_limit = 0
                    await asyncio.sleep(FLOOD_PAUSE_S)
                else:
                    await asyncio.sleep(0)  # one message per turn of the loop
        finally:
            self.clients.discard(client)
            if not self.clients:
                self._watched.clear()
            self.dropped_updates += client.dropped
            writer.cancel()
        return socket

    # --- a page's messages ---------------------------------------------------------------------

    def _received(self, client: Client, message: Any) -> None:
        stats = self.stats
        if message.type is WSMsgType.ERROR:  # too big (the connection is closed: 1009)
            stats.reject("oversize", f"page message from {client.peer}: {message.data}",
                         source=SOURCE)
            return
        if message.type is not WSMsgType.TEXT:
            stats.reject("web.binary", f"page message from {client.peer}: not text",
                         source=SOURCE)
            return
        if not client.limiter.allow(None):
            client.over_limit += 1
            stats.reject("web.rate_limit", f"page from {client.peer}: over "
                         f"{self.config.messages_per_s:g} messages/s", source=SOURCE)
            return
        client.over_limit = 0
        try:
            data = decode_message(message.data, self.config.max_message_bytes)
        except InputError as error:
            self._reject(client, error)
            return
        kind = data["type"]
        if kind in WEB_INPUT_TYPES:
            self._input(client, data)
        elif kind == "watch":
            self._watch(client, data)
        elif kind in ("tune", "save"):
            self._change(client, kind, data)
        else:
            self._reject(client, InputError("web.unknown", f"unknown message type {show(kind)}"))

    def _reject(self, client: Client, error: InputError) -> None:
        self.stats.reject(error.kind, f"page from {client.peer}: {error.reason}", source=SOURCE)
        client.reply(messages.reply("rejected", kind=error.kind, reason=error.reason))

    def _input(self, client: Client, data: dict[str, Any]) -> None:
        stats = self.stats
        try:
            avatar = input_avatar(data)
            if not self.backend.admits(avatar):
                raise InputError("avatar.limit", f"avatar {show(avatar)} not admitted (unknown, "
                                 "another shard's, or the table is full)")
            limiter = self.input_limiter
            if limiter is not None and not limiter.allow(client.peer):
                raise InputError("rate_limit", f"over {limiter.rate_per_s:g} messages/s")
            sample, clipped = parse_web_input(data)
        except InputError as error:
            self._reject(client, error)
            return
        stats.accept(SOURCE, sample)
        if clipped:
            stats.clipped(SOURCE)
        if self._on_sample is not None:
            self._on_sample(sample)

    def _watch(self, client: Client, data: dict[str, Any]) -> None:
        """``{"type": "watch", "avatar": id}``: this page shows another (existing) avatar."""
        avatar = data.get("avatar")
        try:
            if data.keys() != {"type", "avatar"} or type(avatar) is not str:
                raise InputError("web.shape", 'expected {"type": "watch", "avatar": id}')
            check_avatar(avatar, "web.avatar")
            if self.backend.face(avatar) is None:
                raise InputError("web.avatar", f"no avatar {show(avatar)} in this bridge")
        except InputError as error:
            self._reject(client, error)
            return
        client.avatar = avatar

    def _change(self, client: Client, kind: str, data: dict[str, Any]) -> None:
        """``tune`` (sections -> patches) or ``save``: one at a time per page, applied in a task
        (the reload path awaits a worker thread)."""
        try:
            changes = _tune_changes(data) if kind == "tune" else _save_request(data)
        except InputError as error:
            self._reject(client, error)
            return
        if client.busy:
            client.reply(messages.reply("tuned" if kind == "tune" else "saved",
                                        error="busy: the previous change is being applied"))
            return
        client.busy = True
        work = self._tune(client, changes) if kind == "tune" else self._save(client)
        self._spawn(work, f"web page {client.number} {kind}")

    async def _tune(self, client: Client, changes: dict[str, dict[str, Any]]) -> None:
        try:
            outcome = await self.backend.tune(changes)
        finally:
            client.busy = False
        settings = self.backend.settings()
        if outcome.error is not None:
            log.info("control panel: change refused: %s", outcome.error)
        else:
            log.info("control panel changed %s", ", ".join(changes))
            text = messages.settings_message(settings)
            for other in self.clients:
                other.post("settings", text)
        client.reply(messages.reply("tuned", error=outcome.error, settings=settings))

    async def _save(self, client: Client) -> None:
        try:
            outcome = await self.backend.save()
        finally:
            client.busy = False
        if outcome.error is None:
            log.info("control panel saved %s%s", outcome.written,
                     f" (the previous one kept as {outcome.backup})" if outcome.backup else "")
        client.reply(messages.reply("saved", error=outcome.error, written=outcome.written,
                                    backup=outcome.backup))

    def _spawn(self, work: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- updates to the pages ------------------------------------------------------------------

    @property
    def _update_hz(self) -> float:
        return float(min(self.config.fps, self.backend.frame_rate))

    async def _broadcast_forever(self) -> None:
        period_s = 1.0 / self._update_hz
        # Woken just after a frame, the nearest one to a period from now (half a frame early).
        wait_s = period_s - 0.5 / self.backend.frame_rate
        before: dict[str, Any] | None = None
        before_s = next_stats_s = self._clock()
        while True:
            if not self.clients:  # nobody to update: sleep until a page connects
                before = None
                await self._watched.wait()
            await asyncio.sleep(self.backend.seconds_to_slack(wait_s))
            if not self.clients:
                continue
            self._post_faces()
            now_s = self._clock()
            if now_s >= next_stats_s:
                now = self.backend.stats()
                self._post_all("stats", messages.stats_message(
                    now, before, now_s - before_s, avatars=self.backend.avatars(),
                    panel=self.panel_counts()))
                before, before_s, next_stats_s = now, now_s, now_s + STATS_INTERVAL_S

    def _post_faces(self) -> None:
        """One JSON text per watched avatar, posted to every page watching it."""
        texts: dict[str, str | None] = {}
        for client in self.clients:
            avatar = client.avatar
            if avatar not in texts:
                face = self.backend.face(avatar)
                texts[avatar] = None if face is None else messages.face_message(avatar, face)
            text = texts[avatar]
            if text is not None:
                client.post("face", text)

    def _post_all(self, slot: str, text: str) -> None:
        for client in self.clients:
            client.post(slot, text)

    def panel_counts(self) -> dict[str, int]:
        return {"clients": len(self.clients),
                "dropped_updates": self.dropped_updates + sum(c.dropped for c in self.clients)}


def _tune_changes(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"type": "tune", "smoothing": {...}, "liveliness": {...}}`` -> the patches (their values
    are the loader's to judge)."""
    sections = {key: value for key, value in data.items() if key != "type"}
    if not sections or not sections.keys() <= set(TUNABLE):
        raise InputError("web.shape", f"a tune message changes {' and/or '.join(TUNABLE)}; got "
                         f"{', '.join(show(key) for key in sorted(sections)) or 'nothing'}")
    for name, patch in sections.items():
        if not isinstance(patch, dict):
            raise InputError("web.shape", f"tune {name}: expected an object, got {show(patch)}")
    return sections


def _save_request(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if data.keys() != {"type"}:
        raise InputError("web.shape", 'a save message is {"type": "save"}: no file names, no '
                         "paths (Save writes beside the running config)")
    return {}
