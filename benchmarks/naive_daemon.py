"""The naive, seed-style bridge process: the reference the one-avatar benchmark runs side by side.

``python -m vadbridge.benchmarks.naive_daemon --osc-port P --vmc H:P --osc H:P --livelink H:P``

What a first working bridge in Python looks like, written the obvious way: python-osc's
``Dispatcher`` and a ``BlockingOSCUDPServer`` on a thread receive ``/vad v a d`` (the newest
target wins); the main thread loops at ``--fps`` paced by ``time.sleep`` to absolute deadlines,
and each frame smooths a (3,) numpy state towards the target, runs the torch module on that one
sample (``model.api.predict``), applies ``enforce_symmetry`` and builds every packet from
scratch (python-osc's builders for VMC and OSC, ``struct.pack`` for Live Link: the reference
builders of ``benchmarks.encoders``, byte-identical to the daemon's encoders) before a
``sendto`` each, as ``frame_cost.naive_frame_us`` does per avatar.

Two choices favour the reference, so the ratio it yields is not inflated: the blocking server
(python-osc's ``ThreadingOSCUDPServer`` would start a thread per datagram) and torch pinned to
one thread (as the daemon pins its BLAS). The model is the bundled ``.pt`` checkpoint (the
``.npz`` when the ``.pt`` is not installed: the same weights). Prints ``ready`` on stdout once
the model is loaded and the port bound; runs until SIGTERM/SIGINT. Needs torch.
"""

from __future__ import annotations

import argparse
import math
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from vadbridge.benchmarks.encoders import (
    ReferenceBuilder,
    python_osc_per_shape,
    python_osc_vmc,
    struct_live_link,
)
from vadbridge.core.smoothing import smoothing_alpha
from vadbridge.core.types import Frame
from vadbridge.model.api import DEFAULT_CHECKPOINT, predict
from vadbridge.model.arkit import enforce_symmetry

if TYPE_CHECKING:
    from torch import nn

READY = "ready"
TAU_S = 0.15  # one time constant, the order of the daemon's default attack/release (120/300 ms)
OUTPUT_BUILDERS: dict[str, ReferenceBuilder] = {
    "vmc": python_osc_vmc,
    "osc": python_osc_per_shape,
    "livelink": struct_live_link,
}


def load_torch_module() -> nn.Module:
    """The bundled model as the torch module, from its ``.pt`` (else the ``.npz``), eval mode."""
    import torch

    from vadbridge.model.checkpoint import read_state_dict
    from vadbridge.model.config import MLPConfig
    from vadbridge.model.network import VADBlendshapeMLP

    torch.set_num_threads(1)
    checkpoint = DEFAULT_CHECKPOINT.with_suffix(".pt")
    if not checkpoint.is_file():
        checkpoint = DEFAULT_CHECKPOINT
    state, meta = read_state_dict(checkpoint)
    module = VADBlendshapeMLP(MLPConfig.from_dict(meta["architecture"]))
    module.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()})
    module.eval()
    return module


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


class NaiveBridge:
    """One avatar: the newest ``/vad`` target, smoothed and streamed every frame."""

    def __init__(self, module: nn.Module, outputs: list[tuple[ReferenceBuilder, tuple[str, int]]],
                 fps: float) -> None:
        self.module = module
        self.outputs = outputs
        self.period_s = 1.0 / fps
        self.target = np.zeros(3, dtype=np.float32)
        self.state = np.zeros(3, dtype=np.float32)
        self.stop = threading.Event()

    def on_vad(self, _address: str, *args: Any) -> None:
        if len(args) == 3:
            self.target = np.clip(np.array(args, dtype=np.float32), -1.0, 1.0)

    def run(self, sock: socket.socket) -> None:
        alpha = smoothing_alpha(self.period_s, TAU_S)
        start = time.perf_counter()
        frame = 0
        while not self.stop.is_set():
            self.state += alpha * (self.target - self.state)
            weights = enforce_symmetry(predict(self.module, self.state))
            face = Frame(weights, frame, frame * self.period_s)
            for build, address in self.outputs:
                for datagram in build(face):
                    sock.sendto(datagram, address)
            # Absolute deadlines; after an overrun, on to the next deadline still ahead.
            now = time.perf_counter()
            frame = max(frame + 1, math.ceil((now - start) / self.period_s))
            time.sleep(max(0.0, start + frame * self.period_s - time.perf_counter()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vadbridge.benchmarks.naive_daemon",
        description="The naive seed-style bridge (python-osc, torch, time.sleep): the "
        "one-avatar benchmark's reference.",
    )
    parser.add_argument("--osc-port", type=int, required=True, help="OSC input port (loopback)")
    for kind in OUTPUT_BUILDERS:
        parser.add_argument(f"--{kind}", type=_address, metavar="HOST:PORT",
                            help=f"send {kind} frames there")
    parser.add_argument("--fps", type=float, default=60.0)
    args = parser.parse_args(argv)
    outputs = [(build, getattr(args, kind)) for kind, build in OUTPUT_BUILDERS.items()
               if getattr(args, kind) is not None]
    bridge = NaiveBridge(load_torch_module(), outputs, args.fps)
    dispatcher = Dispatcher()
    dispatcher.map("/vad", bridge.on_vad)
    server = BlockingOSCUDPServer(("127.0.0.1", args.osc_port), dispatcher)
    threading.Thread(target=server.serve_forever, name="osc", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop.set())
    print(READY, flush=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            bridge.run(sock)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
