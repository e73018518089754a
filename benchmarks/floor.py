"""What waking 60 times a second costs on this machine before any frame work: the floor under
issue 16's one-avatar target.

``one_avatar`` runs these processes beside the daemon and the naive process, measured by the
same CPU ticks over the same window, so the floor is read under the same conditions:

- ``asyncio loop``: an asyncio event loop that sleeps to each 1/60 s deadline and does nothing;
- ``asyncio loop + 3 sends``: the same, sending three datagrams of the daemon's packet sizes
  (VMC, OSC, Live Link) to a receiver each wake;
- ``sleep loop`` and ``sleep loop + 3 sends``: a plain ``time.sleep`` to each deadline (CPython
  sleeps in ``clock_nanosleep``), no event loop.

A daemon built on asyncio that sends three outputs cannot cost less than the second row; no
Python process that sends them can cost less than the fourth.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

READY = "floor ready"
# About the daemon's packets for one avatar: a VMC bundle of 52 blendshapes, the OSC array,
# a Live Link Face packet.
SEND_BYTES: tuple[int, ...] = (2600, 300, 270)
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Floor:
    loop: str  # "asyncio" or "sleep"
    sends: bool

    @property
    def name(self) -> str:
        return f"{self.loop} loop" + (" + 3 sends" if self.sends else "")


FLOORS: tuple[Floor, ...] = (
    Floor("asyncio", False), Floor("asyncio", True), Floor("sleep", False), Floor("sleep", True),
)  # fmt: skip


def argv(floor: Floor, ports: Sequence[int], fps: int) -> list[str]:
    """The command line of ``floor``'s process, sending to ``ports`` (one per packet)."""
    sends = ["--ports", *map(str, ports)] if floor.sends else []
    return [sys.executable, "-m", "vadbridge.benchmarks.floor", "--loop", floor.loop,
            "--fps", str(fps), *sends]


def _run(loop: str, fps: int, ports: Sequence[int]) -> None:
    period_s = 1.0 / fps
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    packets = [(bytes(size), (HOST, port)) for size, port in zip(SEND_BYTES, ports, strict=False)]

    def wake() -> None:
        for packet, address in packets:
            sock.sendto(packet, address)

    print(READY, flush=True)
    if loop == "sleep":
        deadline = time.monotonic()
        while True:
            deadline += period_s
            time.sleep(max(0.0, deadline - time.monotonic()))
            wake()

    async def forever() -> None:
        running = asyncio.get_running_loop()
        deadline = running.time()
        while True:
            deadline += period_s
            await asyncio.sleep(deadline - running.time())
            wake()

    asyncio.run(forever())


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vadbridge.benchmarks.floor",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "sleep"), required=True)
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--ports", type=int, nargs="*", default=[],
                        help="send one packet to each every wake (at most three)")
    args = parser.parse_args(arguments)
    _run(args.loop, args.fps, args.ports[:len(SEND_BYTES)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
