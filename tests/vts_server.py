"""A stand-in for VTube Studio's plugin API: the documented subset, on a real WebSocket.

VTube Studio cannot run on this machine, so the client is tested against this server, written
from the API's README (DenchiSoft/VTubeStudio; docs/references.md, "VTube Studio"):

- ``AuthenticationTokenRequest``: no answer until the test "clicks" ``allow()`` (then
  ``AuthenticationTokenResponse`` with a token) or ``deny()`` (``APIError`` 50), as VTube
  Studio's popup does; ``auto_allow`` answers at once.
- ``AuthenticationRequest``: ``authenticated: true`` for a token this server issued to the
  same plugin name and developer, ``false`` otherwise (an invalid or revoked token is not an
  error); missing fields are ``APIError`` 100-102.
- ``ParameterCreationRequest``: name rules (4-32 letters and digits, error 350), values (351),
  a name ``refuse_parameters`` holds is "created by another plugin" (352).
- ``InjectParameterDataRequest``: needs an authenticated session (8); after ``revoke()`` every
  request gets 50; an unknown id is 453, a value beyond 1e6 is 451; the values are recorded
  with their arrival time (``injections``).

It runs in a thread with its own event loop, so a test's client (or a whole bridge) sees it as
another process would. ``stop()``/``start()`` restart it on the same port; ``reply_delay_s``
makes it slow (each request waits before it is answered, in order); ``silent`` makes it read
everything and answer nothing. ``send_raw`` pushes any text or bytes to the connected clients.

``MuteListener`` is not VTube Studio at all: a TCP port that accepts connections and never
answers them (no HTTP upgrade), as a hung program or another program on the port would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

_T = TypeVar("_T")
TIMEOUT_S = 10.0
API = {"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0"}
# VTube Studio's default input parameters (wiki "VTS Model Settings").
DEFAULT_PARAMETERS = frozenset({
    "FacePositionX", "FacePositionY", "FacePositionZ", "FaceAngleX", "FaceAngleY", "FaceAngleZ",
    "MouthSmile", "MouthOpen", "Brows", "MousePositionX", "MousePositionY", "TongueOut",
    "EyeOpenLeft", "EyeOpenRight", "EyeLeftX", "EyeLeftY", "EyeRightX", "EyeRightY",
    "CheekPuff", "BrowLeftY", "BrowRightY", "VoiceFrequency", "VoiceVolume",
    "VoiceVolumePlusMouthOpen", "VoiceFrequencyPlusMouthSmile", "MouthX", "FaceAngry",
})  # fmt: skip


@dataclass(eq=False)
class _Session:
    ws: web.WebSocketResponse
    plugin: tuple[str, str] | None = None  # (name, developer) once authenticated
    token: str | None = None


@dataclass
class Injection:
    time_s: float  # time.monotonic() at arrival
    values: dict[str, float]
    face_found: bool
    mode: str


@dataclass
class VtsServer:
    port: int = 0
    auto_allow: bool = False
    reply_delay_s: float = 0.0
    silent: bool = False
    refuse_parameters: set[str] = field(default_factory=set)
    injections: list[Injection] = field(default_factory=list)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    auth_results: list[bool] = field(default_factory=list)
    connections: int = 0
    issued: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> plugin

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vts", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self._sessions: set[_Session] = set()
        self._pending_tokens: list[tuple[_Session, str, tuple[str, str]]] = []
        self._revoked = False

    # --- control (from the test's thread) ------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT_S)

    def start(self) -> VtsServer:
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Close every connection (1001 going away) and the listening socket, as quitting
        VTube Studio does."""
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._call(self._cancel_handlers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT_S)
        self._loop.close()

    def allow(self) -> str:
        """The user clicks Allow: pending token requests get a token (returned)."""
        return self._call(self._answer_token_requests(allow=True))

    def deny(self) -> None:
        self._call(self._answer_token_requests(allow=False))

    def revoke(self) -> None:
        """The user revokes the plugin: its tokens stop working; its sessions get error 50."""
        def revoke() -> None:
            self._revoked = True
            self.issued.clear()

        self._loop.call_soon_threadsafe(revoke)

    def send_raw(self, data: str | bytes) -> None:
        """Push ``data`` to every connected client (hostile replies)."""
        async def push() -> None:
            for session in list(self._sessions):
                if isinstance(data, bytes):
                    await session.ws.send_bytes(data)
                else:
                    await session.ws.send_str(data)

        self._call(push())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pending_token_requests(self) -> int:
        return len(self._pending_tokens)

    # --- the server (on its own loop) ----------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._revoked = False

    async def _stop(self) -> None:
        for session in list(self._sessions):
            await session.ws.close(code=WSCloseCode.GOING_AWAY)
        self._pending_tokens.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _cancel_handlers(self) -> None:
        """End what the stop left running (a handler sleeping on ``reply_delay_s``)."""
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        session = _Session(ws)
        self._sessions.add(session)
        self.connections += 1
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT and not self.silent:
                    if self.reply_delay_s:
                        await asyncio.sleep(self.reply_delay_s)
                    await self._on_request(session, message.data)
        finally:
            self._sessions.discard(session)
        return ws

    async def _answer_token_requests(self, *, allow: bool) -> str:
        token = "vts-" + secrets.token_hex(16)
        pending, self._pending_tokens = self._pending_tokens, []
        for session, request_id, plugin in pending:
            if allow:
                self.issued[token] = plugin
                self._revoked = False
                await self._reply(session, request_id, "AuthenticationTokenResponse",
                                  {"authenticationToken": token})
            else:
                await self._error(session, request_id, 50,
                                  "User has denied API access for your plugin.")
        return token

    async def _on_request(self, session: _Session, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            await self._error(session, None, 2, "JSON invalid")
            return
        self.requests.append(request)
        request_id = request.get("requestID")
        kind = request.get("messageType")
        data = request.get("data") or {}
        if request.get("apiName") != API["apiName"] or request.get("apiVersion") != "1.0":
            await self._error(session, request_id, 3, "API name or version invalid")
        elif kind == "AuthenticationTokenRequest":
            await self._token_request(session, request_id, data)
        elif kind == "AuthenticationRequest":
            await self._authentication(session, request_id, data)
        elif session.plugin is None:
            await self._error(session, request_id, 8, "Request requires authentication")
        elif self._revoked:
            await self._error(session, request_id, 50,
                              "User has denied API access for your plugin.")
        elif kind == "ParameterCreationRequest":
            await self._create(session, request_id, data)
        elif kind == "InjectParameterDataRequest":
            await self._inject(session, request_id, data)
        else:
            await self._error(session, request_id, 7, f"Request type unknown: {kind}")

    async def _token_request(self, session: _Session, request_id: str, data: dict[str, Any]
                             ) -> None:
        self.token_requests += 1
        name, developer = data.get("pluginName"), data.get("pluginDeveloper")
        for value, error in ((name, 52), (developer, 53)):
            if not isinstance(value, str) or not 3 <= len(value) <= 32:
                await self._error(session, request_id, error, "plugin name or developer invalid")
                return
        assert isinstance(name, str) and isinstance(developer, str)
        self._pending_tokens.append((session, request_id, (name, developer)))
        if self.auto_allow:
            await self._answer_token_requests(allow=True)

    async def _authentication(self, session: _Session, request_id: str, data: dict[str, Any]
                              ) -> None:
        for key, error in (("authenticationToken", 100), ("pluginName", 101),
                           ("pluginDeveloper", 102)):
            if not isinstance(data.get(key), str):
                await self._error(session, request_id, error, f"{key} missing")
                return
        plugin = (data["pluginName"], data["pluginDeveloper"])
        ok = self.issued.get(data["authenticationToken"]) == plugin
        self.auth_results.append(ok)
        if ok:
            session.plugin, session.token = plugin, data["authenticationToken"]
        await self._reply(session, request_id, "AuthenticationResponse", {
            "authenticated": ok,
            "reason": "Token valid. The plugin is authenticated for the duration of this "
                      "session." if ok else "Token invalid.",
        })

    async def _create(self, session: _Session, request_id: str, data: dict[str, Any]) -> None:
        name = data.get("parameterName")
        if not isinstance(name, str) or not (4 <= len(name) <= 32 and name.isascii()
                                             and name.isalnum()):
            await self._error(session, request_id, 350, "custom parameter name invalid")
        elif name in DEFAULT_PARAMETERS:
            await self._error(session, request_id, 354, "default parameter name not allowed")
        elif name in self.refuse_parameters:
            await self._error(session, request_id, 352, "created by another plugin")
        elif not all(isinstance(data.get(k), int | float) and abs(data[k]) <= 1e6
                     for k in ("min", "max", "defaultValue")):
            await self._error(session, request_id, 351, "custom parameter values invalid")
        else:
            self.created[name] = dict(data)
            await self._reply(session, request_id, "ParameterCreationResponse",
                              {"parameterName": name})

    async def _inject(self, session: _Session, request_id: str, data: dict[str, Any]) -> None:
        values: dict[str, float] = {}
        for entry in data.get("parameterValues") or []:
            parameter, value = entry.get("id"), entry.get("value")
            if parameter not in DEFAULT_PARAMETERS and parameter not in self.created:
                await self._error(session, request_id, 453, f"parameter {parameter} not found")
                return
            if not isinstance(value, int | float) or abs(value) > 1e6:
                await self._error(session, request_id, 451, "value invalid")
                return
            values[parameter] = float(value)
        if not values:
            await self._error(session, request_id, 450, "no data provided")
            return
        self.injections.append(Injection(time.monotonic(), values,
                                         bool(data.get("faceFound")), data.get("mode", "set")))
        await self._reply(session, request_id, "InjectParameterDataResponse", {})

    async def _reply(self, session: _Session, request_id: str | None, message_type: str,
                     data: dict[str, Any]) -> None:
        if session.ws.closed:
            return
        await session.ws.send_str(json.dumps({
            **API, "timestamp": int(time.time() * 1000), "requestID": request_id,
            "messageType": message_type, "data": data,
        }))

    async def _error(self, session: _Session, request_id: str | None, error_id: int,
                     message: str) -> None:
        await self._reply(session, request_id, "APIError",
                          {"errorID": error_id, "message": message})


class MuteListener:
    """A TCP listener on 127.0.0.1 that accepts every connection and never reads, answers or
    closes it. ``accepted`` holds each connection's ``time.monotonic()`` at accept. Runs in a
    thread with its own event loop, as ``VtsServer`` does."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.accepted: list[float] = []
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vts-mute",
                                        daemon=True)
        self._thread.start()

    def start(self) -> MuteListener:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(TIMEOUT_S)
        return self

    def close(self) -> None:
        """Close the held connections and the listening socket (the port is free after); a
        second call does nothing."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT_S)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted.append(time.monotonic())
            self._held.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def main() -> None:
    """Serve in a process of its own until stdin closes; print the port once listening.

    For timing tests: a server thread in the test's own process would compete with the bridge
    for the GIL, which VTube Studio, another process, never does.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--token", help="a token issued earlier to the plugin vadbridge")
    parser.add_argument("--reply-delay-s", type=float, default=0.0)
    parser.add_argument("--silent", action="store_true")
    parser.add_argument("--mute", action="store_true",
                        help="not VTube Studio: accept connections and never answer them")
    args = parser.parse_args()
    if args.mute:
        listener = MuteListener().start()
        print(listener.port, flush=True)
        sys.stdin.read()
        listener.close()
        return
    server = VtsServer(reply_delay_s=args.reply_delay_s, silent=args.silent)
    if args.token:
        server.issued[args.token] = ("vadbridge", "vadbridge")
    server.start()
    print(server.port, flush=True)
    sys.stdin.read()
    server.close()


if __name__ == "__main__":
    main()
