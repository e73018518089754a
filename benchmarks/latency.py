"""Benchmark 4, end-to-end latency: OSC ``/vad`` in -> the first VMC frame on the wire showing it.

The real daemon runs as a subprocess (``python -m vadbridge.commands run --config ...``) with an OSC
input and a VMC output on free loopback ports and smoothing off (``tau_ms: 0``), so the first
frame after an input carries exactly the model's face for it. We alternate two VAD targets,
compute each one's expected 52 weights with the same checkpoint in-process, send ``/vad`` at a
random phase of the frame period and time until a received VMC bundle decodes to those weights.
The expected worst case is one frame period (waiting for the next deadline) plus the frame work.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vadbridge.benchmarks.harness import Models, Result, free_port, percentile, stop_process
from vadbridge.core.osc_codec import decode_packet, encode_message
from vadbridge.model.arkit import symmetrize_inplace

TARGETS = ((0.8, 0.6, 0.5), (-0.8, -0.4, -0.3))  # happiness and sadness (model card)
MATCH_TOLERANCE = 1e-6  # both sides compute float32 with the same weights
STARTUP_TIMEOUT_S = 60.0

_CONFIG = """\
frame_rate: {fps}
stats_interval_s: 0
log_level: warning
model: {{checkpoint: {checkpoint}, symmetry: true, engine: mlp}}
smoothing: {{tau_ms: 0, space: vad}}
avatars: {{ids: [default], max: 4}}
inputs:
  - {{type: osc, host: 127.0.0.1, port: {osc_port}}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}, avatar: default, naming: perfect_sync}}
"""


def _vmc_values(datagram: bytes) -> np.ndarray:
    values = [
        args[1] for address, args in decode_packet(datagram) if address == "/VMC/Ext/Blend/Val"
    ]
    return np.array(values, dtype=np.float32)


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.recv(65536)
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)


def measure_latency_s(models: Models, workdir: Path, *, fps: int, samples: int) -> list[float]:
    expected = models.engine.forward(np.array(TARGETS, dtype=np.float32))
    symmetrize_inplace(expected)
    if float(np.abs(expected[0] - expected[1]).max()) < 1e-3:
        raise RuntimeError("the two latency targets give the same face: cannot tell frames apart")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    osc_port = free_port(socket.SOCK_DGRAM)
    config = workdir / f"latency-{fps}.yaml"
    config.write_text(
        _CONFIG.format(
            fps=fps,
            checkpoint=models.checkpoint,
            osc_port=osc_port,
            vmc_port=receiver.getsockname()[1],
        )
    )
    log_path = workdir / f"latency-{fps}.log"
    log_file = log_path.open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "vadbridge", "run", "--config", str(config)],
        stderr=log_file,
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    latencies: list[float] = []
    try:
        receiver.settimeout(STARTUP_TIMEOUT_S)
        try:
            receiver.recv(65536)  # the daemon is up and streaming
        except TimeoutError:
            daemon.kill()
            daemon.wait()
            log_file.close()
            raise RuntimeError(
                f"the daemon sent no frame within {STARTUP_TIMEOUT_S:.0f} s: "
                f"{log_path.read_text()[-2000:]}"
            ) from None
        receiver.settimeout(2.0)
        period_s = 1.0 / fps
        rng = random.Random(0)
        for index in range(samples + 1):  # sample 0 only puts the face in a known state
            target = index % 2
            time.sleep(rng.uniform(0.0, period_s))  # land anywhere in the frame period
            message = encode_message("/vad", "fff", TARGETS[target])
            _drain(receiver)
            start = time.perf_counter()
            sender.sendto(message, ("127.0.0.1", osc_port))
            while True:
                values = _vmc_values(receiver.recv(65536))
                if (
                    values.shape == (52,)
                    and np.abs(values - expected[target]).max() <= MATCH_TOLERANCE
                ):
                    break
            if index:
                latencies.append(time.perf_counter() - start)
    finally:
        sender.close()
        receiver.close()
        stop_process(daemon)
        log_file.close()
    return latencies


def run(models: Models, workdir: Path, *, quick: bool) -> list[Result]:
    results = []
    for fps in (60,) if quick else (60, 240):
        samples = 50 if quick else 500
        latencies = measure_latency_s(models, workdir, fps=fps, samples=samples)
        case = f"OSC /vad -> VMC frame, {fps} fps, {samples} samples"
        budget_ms = 1e3 / fps + 1.0
        results += [
            Result("latency", case, "p50", percentile(latencies, 50) * 1e3, "ms"),
            Result("latency", case, "p99", percentile(latencies, 99) * 1e3, "ms"),
            Result("latency", case, "max", max(latencies) * 1e3, "ms"),
            Result("latency", case, "target: period + 1 ms", budget_ms, "ms"),
        ]
    return results
