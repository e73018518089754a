"""One connected page: what it watches, its send budget and its outbox.

Nothing awaits a page but its own writer task. The broadcaster *posts* messages into an outbox of
fixed size: one slot per kind of update (the face, the stats, the settings), where a newer
message replaces one still unsent (a slow page skips frames, it never queues them), and a short
queue of replies to what the page asked (oldest dropped when full). So a page that stops reading
costs at most one message per slot and a few replies, however long it lags.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Protocol

from vadbridge.inputs import DEFAULT_AVATAR, RateLimiter

__all__ = ["MAX_REPLIES", "Client", "TextSender"]

MAX_REPLIES = 16
_numbers = itertools.count(1)


class TextSender(Protocol):
    """What a client writes to: aiohttp's ``WebSocketResponse``."""

    async def send_str(self, data: str, compress: int | None = None) -> None: ...


class Client:
    """A page's connection. ``post`` and ``reply`` never block; ``write_forever`` (the client's
    task) sends what they left, replies first, and returns when the connection fails."""

    def __init__(self, socket: TextSender, peer: str, *, messages_per_s: float) -> None:
        self.number = next(_numbers)
        self.socket = socket
        self.peer = peer  # the sender address: the inputs' rate limit is per address
        self.avatar = DEFAULT_AVATAR  # the avatar whose face this page watches
        self.limiter = RateLimiter(messages_per_s, max_keys=1)  # this connection's budget
        self.busy = False  # a change (tune, save) of this page is being applied
        self.over_limit = 0  # messages dropped in a row for the rate limit
        self.dropped = 0  # updates replaced before they were sent (a slow page)
        self.sent = 0
        self._slots: dict[str, str] = {}
        self._replies: deque[str] = deque(maxlen=MAX_REPLIES)
        self._wake = asyncio.Event()

    def post(self, slot: str, text: str) -> None:
        """The newest ``slot`` update (``face``, ``stats``...); replaces an unsent one."""
        if slot in self._slots:
            self.dropped += 1
        self._slots[slot] = text
        self._wake.set()

    def reply(self, text: str) -> None:
        """An answer to this page's own message."""
        self._replies.append(text)
        self._wake.set()

    async def write_forever(self) -> None:
        socket = self.socket
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._replies or self._slots:
                if self._replies:
                    text = self._replies.popleft()
                else:
                    slot = next(iter(self._slots))
                    text = self._slots.pop(slot)
                try:
                    await socket.send_str(text)
                except (ConnectionError, RuntimeError):  # closed or closing: the reader ends it
                    return
                self.sent += 1
