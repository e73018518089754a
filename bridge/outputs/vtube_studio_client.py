"""VTube Studio output: a client of VTube Studio's plugin API over WebSocket (aiohttp).

The sink contract is synchronous (docs/DESIGN.md, "Sources and sinks"): ``send`` runs in the
frame loop and only copies the newest face into a buffer; ``run()``, a task the bridge starts
and supervises, does all the I/O. So the frame loop never waits on the socket, and frames that
arrive while VTube Studio is slow, closed or asking the user are coalesced (the newest wins),
never queued.

One connection, in order (README, "VTube Studio"): read the token file; authenticate with the
token (every connection); without a token, or when VTube Studio refuses it, request one (VTube
Studio shows its Allow popup and answers when the user clicks) and keep it in ``token_file``
(mode 0600); create the custom parameters if asked; then inject the newest face every frame, at
most ``rate_hz`` times a second and at least every ``KEEPALIVE_S`` (VTube Studio lets go of a
parameter after a second without data). When VTube Studio is closed or restarts, the client
reconnects with exponential backoff (0.25 s doubling up to ``reconnect_max_s``); an attempt that
gets no WebSocket handshake within ``CONNECT_TIMEOUT_S`` (something listens but never answers)
counts as VTube Studio not running.

Each state change is one log line (``state``); a reply we cannot use (not JSON, too big, an
unexpected type, an API error) is counted in ``reply_errors`` by kind and in ``send_errors``
(the stats line's column), and logged once per kind. The token never reaches a log line or an
exception: it is replaced by ``<token>`` in any text from the server that is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

import aiohttp
import numpy as np

from vadbridge.config import VtsMappingRow, VtubeStudioOutputConfig
from vadbridge.core.stats import printable, show
from vadbridge.core.types import Frame
from vadbridge.files import write_replacing
from vadbridge.model.arkit import NUM_BLENDSHAPES
from vadbridge.outputs.vtube_studio import (
    INJECT_REQUEST_ID,
    NUM_INPUTS,
    CustomParameter,
    InjectionTemplate,
    ParameterMap,
    Reply,
    ReplyError,
    authentication_request,
    custom_parameters,
    custom_rows,
    is_token,
    merge_mapping,
    parameter_creation_request,
    parse_reply,
    token_request,
)

__all__ = ["VtubeStudioSink", "read_token_file", "write_token_file"]

log = logging.getLogger("vadbridge.outputs")

INITIAL_RETRY_S: Final = 0.25
DENIED_RETRY_S: Final = 30.0  # a denied user is asked again, but not every few seconds
REPLY_TIMEOUT_S: Final = 5.0  # an API request unanswered this long means a stuck server
KEEPALIVE_S: Final = 0.5  # re-inject at least this often: VTube Studio lets go after 1 s
CONNECT_TIMEOUT_S: Final = 3.0  # the TCP connect and the WebSocket upgrade together
CLOSE_TIMEOUT_S: Final = 1.0
MAX_REPLY_BYTES: Final = 64 * 1024  # VTube Studio's replies to our requests are < 1 KB
ERROR_DENIED: Final = 50  # TokenRequestDenied: also the answer to anything after a revoke
ERROR_TOKEN_REQUEST_ONGOING: Final = 51
_SETTINGS_HINT: Final = "VTube Studio settings: 'Start API (allow plugins)'"


class _SessionEnded(Exception):
    """A connection is over: ``state`` and ``message`` make the log line, ``retry_after_s``
    (None = the backoff) when to try again."""

    def __init__(self, state: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.message = message
        self.retry_after_s = retry_after_s


def read_token_file(path: Path) -> tuple[str | None, str | None]:
    """``(token, None)``, ``(None, None)`` when there is no file yet, or ``(None, problem)``.
    The problem never quotes the file's content."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as error:
        return None, f"cannot read it ({getattr(error, 'strerror', None) or type(error).__name__})"
    if not is_token(text):
        return None, "it does not hold a token (1-64 printable ASCII characters)"
    return text, None


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` with mode 0600, replacing the file in one step (a crash
    leaves the old file or the new one, never half a token, and no reader sees looser modes)."""
    write_replacing(path, token + "\n", mode=0o600)


class VtubeStudioSink:
    """One VTube Studio output bound to one avatar. ``send`` stores; ``run`` talks.

    ``state`` is one of starting, unreachable, waiting_for_allow, denied, token_refused,
    streaming, lost, stalled, revoked, refused, closed. ``frames_injected`` counts injection
    requests sent; ``send_errors`` counts failed connection attempts, ended connections,
    failed sends and unusable replies; ``reply_errors`` the unusable replies by kind.
    """

    def __init__(self, config: VtubeStudioOutputConfig, *, name: str,
                 frame_rate: float) -> None:
        self.name = name
        self.url = config.url
        self.avatar = config.avatar
        self.plugin_name = config.plugin_name
        self.token_path = Path(config.token_file)
        self.custom_parameters = config.custom_parameters
        self.reconnect_max_s = config.reconnect_max_s
        self.rate_hz = min(config.rate_hz, frame_rate)
        # At or above the frame rate there is nothing to limit: every frame goes out (a limiter
        # on the same period would drop frames whenever the two clocks jitter apart).
        self._min_interval_s = 0.0 if config.rate_hz >= frame_rate else 1.0 / config.rate_hz
        self._rows = merge_mapping(config.mapping)
        self.state = "starting"
        self.send_errors = 0
        self.reply_errors: dict[str, int] = {}
        self.frames_injected = 0
        self.connections = 0
        self._inputs = np.zeros(NUM_INPUTS, dtype=np.float32)
        self._pending = False
        self._closing = False
        # The token in use, read from the file or asked for (kept when the file cannot be
        # written); every log line has it replaced by <token>.
        self._token: str | None = None
        self._logged_kinds: set[str] = set()
        self._futures: dict[str, asyncio.Future[Reply]] = {}
        self._request_ids = itertools.count(1)
        self._answered_at_s = 0.0
        self._streamed = False
        self._session_task: asyncio.Task[None] | None = None
        # Events bind to the loop that first waits on them (Python >= 3.10), so they can be
        # made here, where a reload builds the sink (a worker thread).
        self._wake = asyncio.Event()  # a frame is pending, or close() was called
        self._closed_event = asyncio.Event()

    # --- the synchronous side (frame loop) ----------------------------------------------------

    def send(self, frame: Frame) -> None:
        """Keep the frame's face as the newest; ``run`` injects it."""
        if frame.weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {frame.weights.shape}")
        np.copyto(self._inputs[:NUM_BLENDSHAPES], frame.weights)  # the caller's row changes
        np.copyto(self._inputs[NUM_BLENDSHAPES:], frame.vad)
        self._pending = True
        self._wake.set()

    def close(self) -> None:
        """Ask ``run`` to inject the pending frame (if streaming) and return; sends nothing."""
        self._closing = True
        self._wake.set()
        self._closed_event.set()
        task = self._session_task
        if task is not None and self.state != "streaming":
            task.cancel()  # nothing to deliver: do not wait for a popup or a timeout

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def connected(self) -> bool:
        return self.state == "streaming"

    # --- the async side -----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, authenticate and inject until ``close()``, reconnecting with backoff."""
        closed = self._closed_event
        delay_s = INITIAL_RETRY_S
        # No session-wide limits: a connection lasts as long as VTube Studio runs. ``_connect``
        # bounds the handshake; the replies have their own timeouts.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            while not self._closing:
                wait_s = delay_s
                task = asyncio.create_task(self._connect(http), name=f"{self.name} session")
                self._session_task = task
                try:
                    await asyncio.wait({task})
                finally:
                    self._session_task = None
                    if not task.done():  # run() itself was cancelled
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                if task.cancelled():  # close() ended a connection that had nothing to send
                    break
                ended = task.exception()
                if isinstance(ended, _SessionEnded):
                    self.send_errors += 1
                    self._enter(ended.state, ended.message)
                    wait_s = ended.retry_after_s or delay_s
                elif isinstance(ended, aiohttp.ClientError | OSError | TimeoutError):
                    self.send_errors += 1
                    self._enter("unreachable", (
                        f"VTube Studio not running at {self.url}, or its API is off "
                        f"({_SETTINGS_HINT}): {_reason(ended)}; retrying at least every "
                        f"{self.reconnect_max_s:g} s"))
                elif ended is not None:
                    raise ended
                if self._streamed:  # a connection that worked starts the backoff over
                    self._streamed, delay_s, wait_s = False, INITIAL_RETRY_S, INITIAL_RETRY_S
                else:
                    delay_s = min(delay_s * 2, self.reconnect_max_s)
                if self._closing:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), wait_s)
        self.state = "closed"

    async def _connect(self, http: aiohttp.ClientSession) -> None:
        # One deadline for the TCP connect and the HTTP upgrade: aiohttp's connect timeouts stop
        # at the TCP handshake, so a listener that accepts and never answers the upgrade would
        # otherwise hold this attempt forever (no log line, no retry).
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                ws = await http.ws_connect(
                    self.url, max_msg_size=MAX_REPLY_BYTES, autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S))
        except TimeoutError:
            raise TimeoutError(f"no answer to the connection or the WebSocket upgrade within "
                               f"{CONNECT_TIMEOUT_S:g} s") from None
        async with ws:
            self.connections += 1
            reader = asyncio.create_task(self._read(ws), name=f"{self.name} read")
            worker = asyncio.create_task(self._converse(ws), name=f"{self.name} talk")
            try:
                done, _ = await asyncio.wait((reader, worker),
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, worker):
                    task.cancel()
                await asyncio.gather(reader, worker, return_exceptions=True)
            for task in done:
                error = task.exception()
                if isinstance(error, aiohttp.ClientError | OSError):  # a send on a dead socket
                    raise _SessionEnded("lost", self._lost(_reason(error))) from None
                task.result()
            if worker not in done:  # the socket closed under the conversation
                raise _SessionEnded("lost", self._lost("closed by VTube Studio"))

    def _lost(self, reason: str) -> str:
        return f"lost the connection to VTube Studio at {self.url} ({reason}); reconnecting"

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Authenticate (asking for a token when needed), create parameters, then stream."""
        token = self._token
        if token is None:
            token, problem = await asyncio.to_thread(read_token_file, self.token_path)
            if problem is not None:
                self._log_once(f"token_file {problem}", logging.WARNING,
                               f"token file {self.token_path}: {problem}; asking VTube Studio "
                               "for a new token")
            self._token = token  # read once, and redacted from every log line like an asked one
        if token is not None and not await self._authenticate(ws, token):
            self._token = token = None
            self._enter("token_refused", (
                f"VTube Studio refused the saved token (access revoked in VTube Studio, or the "
                f"token was issued to another plugin name): asking for a new one; the new token "
                f"replaces {self.token_path}"))
        if token is None:
            token = await self._request_token(ws)
            self._token = token
            await self._store_token(token)
            if not await self._authenticate(ws, token):
                raise _SessionEnded("refused", "VTube Studio refused the token it had just "
                                    "issued; trying again")
        parameter_map = ParameterMap(self._rows + await self._create_parameters(ws))
        self._streamed = True
        self._enter("streaming", (
            f"connected to VTube Studio at {self.url} as plugin {self.plugin_name!r}: injecting "
            f"{len(parameter_map)} parameters at up to {self.rate_hz:g} Hz"), logging.INFO)
        await self._stream(ws, parameter_map)

    async def _request(self, ws: aiohttp.ClientWebSocketResponse, kind: str,
                       build: Callable[[str], str], *, wait_forever: bool = False) -> Reply:
        """Send the request ``build(request_id)`` and await its reply (matched by id, so
        requests may overlap and stray messages cannot pass for a reply) for at most
        ``REPLY_TIMEOUT_S``, or without a limit."""
        timeout_s = None if wait_forever else REPLY_TIMEOUT_S
        request_id = f"vadbridge-{kind}-{next(self._request_ids)}"
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = reply
        try:
            await ws.send_str(build(request_id))
            return await asyncio.wait_for(reply, timeout_s)
        except TimeoutError:
            raise _SessionEnded("stalled", (
                f"VTube Studio at {self.url} did not answer the {kind} request within "
                f"{timeout_s:g} s; reconnecting")) from None
        finally:
            self._futures.pop(request_id, None)

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> bool:
        reply = await self._request(
            ws, "auth", lambda request_id: authentication_request(self.plugin_name, token,
                                                                   request_id))
        if reply.message_type == "AuthenticationResponse":
            return reply.data.get("authenticated") is True
        if reply.error_id == ERROR_DENIED:  # revoked
            return False
        self._unusable(reply, "authentication")
        raise _SessionEnded("refused", "VTube Studio did not accept the authentication request "
                            "(see the line above); trying again")

    async def _request_token(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        self._enter("waiting_for_allow", (
            f"waiting for the user to allow the plugin {self.plugin_name!r} in VTube Studio "
            "(click 'Allow' in the popup VTube Studio shows)"))
        # No timeout: the user may take minutes to click.
        reply = await self._request(
            ws, "token", lambda request_id: token_request(self.plugin_name, request_id),
            wait_forever=True)
        token = reply.data.get("authenticationToken")
        if reply.message_type == "AuthenticationTokenResponse" and is_token(token):
            assert isinstance(token, str)
            return token
        if reply.error_id == ERROR_DENIED:
            raise _SessionEnded("denied", (
                f"the user denied the plugin {self.plugin_name!r} in VTube Studio; asking again "
                f"in {DENIED_RETRY_S:g} s (click 'Allow' then, or remove this output)"),
                retry_after_s=DENIED_RETRY_S)
        if reply.error_id == ERROR_TOKEN_REQUEST_ONGOING:  # the popup of an earlier connection
            raise _SessionEnded("waiting_for_allow", "")
        self._unusable(reply, "token request")
        raise _SessionEnded("refused", "VTube Studio did not issue a token (see the line "
                            "above); trying again")

    async def _store_token(self, token: str) -> None:
        try:
            await asyncio.to_thread(write_token_file, self.token_path, token)
        except OSError as error:
            self._log_once("token_file write", logging.WARNING, (
                f"cannot write the token file {self.token_path} ({_reason(error)}): the token "
                "is kept for this run only, so VTube Studio will ask again at the next start"))

    async def _create_parameters(
        self, ws: aiohttp.ClientWebSocketResponse
    ) -> tuple[VtsMappingRow, ...]:
        """Create the custom parameters (all requests at once, then the replies); the rows of
        those VTube Studio accepted."""
        if not self.custom_parameters:
            return ()
        wanted = custom_parameters()
        replies = await asyncio.gather(*(
            self._request(ws, "create", functools.partial(parameter_creation_request, parameter))
            for parameter in wanted))
        accepted: list[CustomParameter] = []
        refused: list[str] = []
        for parameter, reply in zip(wanted, replies, strict=True):
            if reply.message_type == "ParameterCreationResponse":
                accepted.append(parameter)
            else:
                refused.append(f"{parameter.name}: error {reply.error_id} "
                               f"{show(self._redact(reply.error_message))}")
        if refused:
            self._log_once("create", logging.WARNING, (
                f"VTube Studio refused {len(refused)} of {len(wanted)} custom parameters, which "
                f"are not injected (first: {refused[0]})"))
        return custom_rows(accepted)

    async def _stream(self, ws: aiohttp.ClientWebSocketResponse,
                      parameter_map: ParameterMap) -> None:
        """Inject the newest face per frame (at most ``rate_hz``, at least every
        ``KEEPALIVE_S``) until closed; the pending frame goes out before returning."""
        wake, closed = self._wake, self._closed_event
        loop = asyncio.get_running_loop()
        template = InjectionTemplate(parameter_map.ids)
        values = np.empty(len(parameter_map), dtype=np.float32)
        self._answered_at_s = loop.time()
        sent_at_s = -KEEPALIVE_S
        while True:
            if not self._pending and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(),
                                           max(0.0, sent_at_s + KEEPALIVE_S - loop.time()))
            delay_s = sent_at_s + self._min_interval_s - loop.time()
            if delay_s > 0 and not self._closing:
                with contextlib.suppress(TimeoutError):  # frames meanwhile replace this one
                    await asyncio.wait_for(closed.wait(), delay_s)
            wake.clear()
            self._pending = False
            parameter_map.apply(self._inputs, values)
            await ws.send_str(template.encode(values))
            sent_at_s = loop.time()
            self.frames_injected += 1
            if self._closing:
                return
            if sent_at_s - self._answered_at_s > REPLY_TIMEOUT_S:
                raise _SessionEnded("stalled", (
                    f"VTube Studio at {self.url} stopped answering (no reply for "
                    f"{REPLY_TIMEOUT_S:g} s); reconnecting"))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Hand each reply to the request awaiting it; count the rest. Ends with the socket."""
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self._count("reply.binary", "a binary message (VTube Studio sends text)")
                elif message.type == aiohttp.WSMsgType.ERROR:
                    error = message.data
                    if getattr(error, "code", None) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                        self._count("reply.oversize",
                                    f"a message over {MAX_REPLY_BYTES} bytes (connection closed)")
                    return
                else:  # CLOSE, CLOSING, CLOSED
                    return
        finally:
            for future in self._futures.values():
                if not future.done():
                    future.set_exception(ConnectionResetError("connection closed"))

    def _on_text(self, text: str) -> None:
        try:
            reply = parse_reply(text)
        except ReplyError as error:
            self._count(error.kind, error.reason)
            return
        future = self._futures.get(reply.request_id or "")
        if future is not None and not future.done():
            future.set_result(reply)
            return
        if reply.request_id != INJECT_REQUEST_ID:
            self._count("reply.unexpected", f"messageType {show(reply.message_type)} answering "
                        "no request of ours")
            return
        self._answered_at_s = asyncio.get_running_loop().time()
        if reply.message_type == "InjectParameterDataResponse":
            return
        if reply.error_id == ERROR_DENIED:
            raise _SessionEnded("revoked", (
                "VTube Studio revoked the plugin's access: reconnecting to ask for a new token"))
        self._unusable(reply, "injection")

    def _unusable(self, reply: Reply, answering: str) -> None:
        """Count a reply that is not the answer ``answering`` expects (APIError or other)."""
        if reply.message_type == "APIError":
            self._count(f"api_error.{reply.error_id}", (
                f"API error {reply.error_id} answering the {answering}: "
                f"{show(self._redact(reply.error_message))}"))
        else:
            self._count("reply.unexpected", f"messageType {show(reply.message_type)} answering "
                        f"the {answering}")

    def _count(self, kind: str, reason: str) -> None:
        self.reply_errors[kind] = self.reply_errors.get(kind, 0) + 1
        self.send_errors += 1
        self._log_once(kind, logging.WARNING, (
            f"unusable reply from VTube Studio at {self.url} ({kind}): {reason}; further "
            f"{kind} replies are only counted"))

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    def _log_once(self, kind: str, level: int, message: str) -> None:
        if kind not in self._logged_kinds:
            self._logged_kinds.add(kind)
            log.log(level, "output %s: %s", self.name, printable(self._redact(message), 600))

    def _enter(self, state: str, message: str, level: int = logging.WARNING) -> None:
        """Become ``state``, logging ``message`` once per change of state."""
        if state == self.state:
            return
        self.state = state
        if message:
            log.log(level, "output %s: %s", self.name, printable(self._redact(message), 600))

    def __repr__(self) -> str:
        return f"VtubeStudioSink({self.name!r}, {self.url}, state={self.state})"


def _reason(error: BaseException) -> str:
    """A short reason for a log line (connection errors carry the address, never a token)."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return printable(text, 200)
