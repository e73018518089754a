"""``vadbridge run`` as users start it: a real subprocess, real sockets, real signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bridge_harness import UdpReceiver, vmc_frame_values
from conftest import free_port, kill_if_running

from vadbridge.commands import main

REPO = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, vmc_port: int, osc_port: int) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""
stats_interval_s: 0
inputs:
  - {{type: osc, host: 127.0.0.1, port: {osc_port}}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}}}
""")
    return path


def start_bridge(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vadbridge", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_sends_a_neutral_frame_and_exits_zero(tmp_path: Path) -> None:
    vmc = UdpReceiver()
    config = write_config(tmp_path, vmc.port, free_port(socket.SOCK_DGRAM))
    process = start_bridge(config)
    try:
        assert vmc.receive(3.0), "no frames from the bridge"
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        _, stderr = process.communicate(timeout=10)
        frames = vmc.receive(0.3)
    finally:
        kill_if_running(process)
        vmc.close()
    assert process.returncode == 0, stderr
    assert time.monotonic() - stopped_at < 10
    assert "Traceback" not in stderr
    last = vmc_frame_values(frames[-1][1]) if frames else None
    assert last is not None and len(last) == 52
    assert set(last.values()) == {0.0}


def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    vmc = UdpReceiver()
    process = start_bridge(write_config(tmp_path, vmc.port, free_port(socket.SOCK_DGRAM)))
    try:
        assert vmc.receive(3.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        kill_if_running(process)
        vmc.close()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_check_validates_and_reports_an_unreachable_broker(tmp_path: Path, capsys) -> None:
    broker_port = free_port()
    path = tmp_path / "c.yaml"
    path.write_text(f"""
inputs: [{{type: mqtt, host: 127.0.0.1, port: {broker_port}}}]
""")
    assert main(["run", "--config", str(path), "--check"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out
    assert f"mqtt 127.0.0.1:{broker_port}: unreachable" in out


def test_bad_config_exits_2_naming_file_line_and_key(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("frame_rate: 60\noutputs:\n  - {type: vmc, port: 70000}\n")
    assert main(["run", "--config", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: outputs[0].port: expected an integer 1..65535, got 70000" in err


def test_osc_port_in_use_fails_at_start_with_exit_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        vmc = UdpReceiver()
        process = start_bridge(write_config(tmp_path, vmc.port, port))
        try:
            _, stderr = process.communicate(timeout=20)
        finally:
            vmc.close()
    assert process.returncode == 1
    assert f"vadbridge run: OSC input 127.0.0.1:{port}: Address already in use" in stderr
    assert "Errno" not in stderr
    assert "Traceback" not in stderr


def test_command_line_overrides_replace_the_addresses(tmp_path: Path, capsys) -> None:
    path = write_config(tmp_path, 39539, 9000)
    assert (
        main(
            [
                "run",
                "--config",
                str(path),
                "--check",
                "--fps",
                "30",
                "--osc-in",
                "127.0.0.1:9100",
                "--vmc-out",
                "127.0.0.1:39600",
            ]
        )
        == 0
    )
    assert "30 fps" in capsys.readouterr().out
    assert main(["run", "--config", str(path), "--check", "--fps", "500"]) == 2
    assert "--fps" in capsys.readouterr().err


def test_check_leaves_an_existing_take_untouched(tmp_path: Path, capsys) -> None:
    take = tmp_path / "take.csv"
    take.write_text("an earlier take\n")
    path = tmp_path / "c.yaml"
    path.write_text("inputs: []\noutputs: [{type: record, path: take.csv}]\n")
    assert main(["run", "--config", str(path), "--check"]) == 0
    assert take.read_text() == "an earlier take\n"
    assert f"{path}: OK" in capsys.readouterr().out


def test_check_rejects_a_checkpoint_that_does_not_load(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a checkpoint")
    path = tmp_path / "c.yaml"
    path.write_text("model: {checkpoint: broken.npz}\ninputs: []\n")
    assert main(["run", "--config", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "broken.npz" in err


def test_without_a_config_file_the_built_in_defaults_run(tmp_path: Path, capsys,
                                                         monkeypatch) -> None:
    import vadbridge.commands.run

    # As in an installed package, where the repository's config/ does not exist.
    monkeypatch.setattr(vadbridge.commands.run, "DEFAULT_CONFIG", tmp_path / "missing.yaml")
    assert main(["run", "--check"]) == 0
    assert "built-in defaults: OK (60 fps, 2 input(s), 1 output(s))" in capsys.readouterr().out


def test_check_rejects_outputs_the_avatar_table_cannot_hold(tmp_path: Path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("avatars: {ids: [a], max: 1}\ninputs: []\n"
                    "outputs: [{type: vmc, avatar: a}, {type: vmc, avatar: b}]\n")
    assert main(["run", "--config", str(path), "--check"]) == 2
    assert "outputs[1].avatar" in capsys.readouterr().err


def test_a_broadcast_output_fails_check_and_run_with_one_line_naming_it(
    tmp_path: Path, capsys
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inputs: []\noutputs:\n  - {type: vmc, host: 127.0.0.1, port: 39540}\n"
                    "  - {type: vmc, host: 255.255.255.255, port: 39539}\n")
    expected = (f"vadbridge run: {path}: outputs[1] (vmc 255.255.255.255:39539): "
                "Permission denied (broadcast needs SO_BROADCAST")
    for extra in (["--check"], []):
        assert main(["run", "--config", str(path), *extra]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(expected), err


def test_an_unscoped_link_local_ipv6_output_fails_check_and_run_naming_it(
    tmp_path: Path, capsys
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inputs: []\noutputs:\n  - {type: osc, host: 'fe80::1', port: 9000}\n")
    expected = (f"vadbridge run: {path}: outputs[0] (osc fe80::1:9000): Invalid argument "
                "(a link-local IPv6 address needs a scope: fe80::1%<interface>)")
    for extra in (["--check"], []):
        assert main(["run", "--config", str(path), *extra]) == 2
        assert capsys.readouterr().err.splitlines() == [expected]
