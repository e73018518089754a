"""The README's quick start, as a newcomer types it: every shell block, in order, against a real
`make run` and a real `make broker` (Debian's mosquitto).

Two liberties, both needed to run beside the rest of the suite: the default ports (OSC 9000,
MQTT 1883, VMC 39539, the control panel's 8800) become free ports, passed the way the README
says (`make run ARGS=...`, `make run WEB=...`, `make broker BROKER_PORT=...`, the senders' own
port options); and `make test` is skipped (it is this suite). Between two examples the test
sends a neutral VAD itself, so each example has to make the face smile on its own.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_harness import UdpReceiver, osc, send_osc, vmc_frame_values
from conftest import free_port

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
_START = README.index("## Quick start")
QUICK_START = README[_START:README.index("\n## ", _START)]
COMMANDS = [
    line.split("  #")[0].strip()
    for block in re.findall(r"```sh\n(.*?)```", QUICK_START, re.S)
    for line in block.splitlines()
    if line.strip() and not line.startswith("#")
]
SMILE = "MouthSmileLeft"
NEUTRAL_SMILE_MAX = 0.2  # the bundled model's neutral face: 0.03
SMILING_MIN = 0.5  # happiness at intensity 0.8: 0.66; the VAD example: 0.73


def test_the_quick_start_has_the_commands_this_test_knows() -> None:
    assert COMMANDS[:2] == ["make run", "make test"]
    assert "make broker" in COMMANDS
    assert sum(c.startswith("mosquitto_pub") for c in COMMANDS) == 2
    assert sum("9000" in c or "vadbridge send" in c for c in COMMANDS) == 2


class QuickStart:
    def __init__(self, tmp_path: Path) -> None:
        self.osc = free_port(socket.SOCK_DGRAM)
        self.mqtt = free_port()
        self.web = free_port()
        self.vmc = UdpReceiver()
        self.log = tmp_path / "make-run.log"
        # `make broker` keeps its config, log and pid file under TMPDIR.
        self.env = {**os.environ, "TMPDIR": str(tmp_path)}
        self.broker_dir = tmp_path / f"vadbridge-broker-{self.mqtt}"
        self.bridge: subprocess.Popen[bytes] | None = None

    def adapt(self, command: str) -> str:
        """The README's command with this test's ports."""
        if command == "make run":
            return (f'make run WEB=127.0.0.1:{self.web} ARGS="--osc-in 127.0.0.1:{self.osc} '
                    f'--mqtt 127.0.0.1:{self.mqtt} --vmc-out 127.0.0.1:{self.vmc.port}"')
        if command == "make broker":
            return f"make broker BROKER_PORT={self.mqtt}"
        if command.startswith("mosquitto_pub"):
            return f"mosquitto_pub -p {self.mqtt} {command.removeprefix('mosquitto_pub ')}"
        if "vadbridge send" in command:
            return f"{command} --osc 127.0.0.1:{self.osc}"
        if "9000" in command:
            return command.replace("9000", str(self.osc))
        raise AssertionError(f"the quick start has a command this test does not know: {command}")

    def start_bridge(self, command: str) -> None:
        with self.log.open("wb") as log:
            self.bridge = subprocess.Popen(
                command, shell=True, cwd=REPO, env=self.env, stdout=log, stderr=log,
                start_new_session=True,  # the group: make and the bridge it starts
            )
        self.wait_for_log("streaming at", 60)
        self.vmc.receive(0.3)

    def wait_for_log(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log.read_text(errors="replace"):
            assert self.bridge is not None and self.bridge.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log.read_text()}"
            time.sleep(0.05)

    def smile(self, seconds: float) -> float:
        frames = self.vmc.receive(seconds)
        assert frames, "no VMC frames"
        return vmc_frame_values(frames[-1][1])[SMILE]

    def neutral(self) -> None:
        send_osc(self.osc, osc("/vad", 0.0, 0.0, 0.0))
        assert self.smile(1.0) < NEUTRAL_SMILE_MAX

    def stop(self) -> None:
        if self.bridge is not None and self.bridge.poll() is None:
            os.killpg(self.bridge.pid, signal.SIGINT)
            try:
                self.bridge.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.bridge.pid, signal.SIGKILL)
                self.bridge.wait()
        pid_file = self.broker_dir / "mosquitto.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        self.vmc.close()


@pytest.fixture
def quick_start(tmp_path: Path) -> Iterator[QuickStart]:
    run = QuickStart(tmp_path)
    try:
        yield run
    finally:
        run.stop()


def test_every_quick_start_command_runs_in_order_and_each_example_smiles(
    quick_start: QuickStart,
) -> None:
    run = quick_start
    smiles: dict[str, float] = {}
    for command in COMMANDS:
        if command == "make test":
            continue
        adapted = run.adapt(command)
        if command == "make run":
            run.start_bridge(adapted)
            assert run.smile(0.3) < NEUTRAL_SMILE_MAX  # it starts on a neutral face
            run.wait_for_log(f"control panel: http://127.0.0.1:{run.web}/", 5)  # as promised
            continue
        result = subprocess.run(adapted, shell=True, cwd=REPO, env=run.env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, (shlex.split(adapted)[0], result.stdout, result.stderr)
        if command == "make broker":
            run.wait_for_log("MQTT connected", 30)  # as the README says to wait for
            continue
        smiles[command] = run.smile(1.0)  # smoothing tau 150 ms: arrived after 1 s
        run.neutral()
    assert len(smiles) == 4
    for command, smile in smiles.items():
        assert smile > SMILING_MIN, (command, smile)
