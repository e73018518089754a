"""A page's outbox (issue 15, hot-path rules): posting never waits for the page, a slow page
skips updates instead of queueing them, and replies to its own messages go first."""

from __future__ import annotations

import asyncio

from vadbridge.web.clients import MAX_REPLIES, Client


class StuckSocket:
    """A page that stopped reading: each send waits until ``release`` is set."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.release = asyncio.Event()

    async def send_str(self, data: str, compress: int | None = None) -> None:
        await self.release.wait()
        self.sent.append(data)


def test_a_slow_page_keeps_one_update_per_slot_and_counts_the_skipped_ones() -> None:
    async def scenario() -> tuple[Client, StuckSocket]:
        socket = StuckSocket()
        client = Client(socket, "127.0.0.1", messages_per_s=10)
        writer = asyncio.create_task(client.write_forever())
        client.post("face", "face 0")
        await asyncio.sleep(0)  # the writer takes "face 0" and is stuck sending it
        for number in range(1, 1001):  # the broadcaster never waits
            client.post("face", f"face {number}")
            client.post("stats", f"stats {number}")
        client.reply("tuned")
        socket.release.set()
        while len(socket.sent) < 4:
            await asyncio.sleep(0)
        writer.cancel()
        return client, socket

    client, socket = asyncio.run(scenario())
    assert socket.sent == ["face 0", "tuned", "face 1000", "stats 1000"]
    assert client.dropped == 2 * 999  # every update but the newest of each slot


def test_replies_are_bounded_too() -> None:
    client = Client(StuckSocket(), "127.0.0.1", messages_per_s=10)
    for number in range(100):
        client.reply(f"reply {number}")
    assert len(client._replies) == MAX_REPLIES
    assert client._replies[0] == f"reply {100 - MAX_REPLIES}"  # the newest kept


def test_a_closed_connection_ends_the_writer() -> None:
    class Closed:
        async def send_str(self, data: str, compress: int | None = None) -> None:
            raise ConnectionResetError("gone")

    async def scenario() -> None:
        client = Client(Closed(), "127.0.0.1", messages_per_s=10)
        client.post("face", "x")
        await asyncio.wait_for(client.write_forever(), 5)

    asyncio.run(scenario())
