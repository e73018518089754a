"""Signals at awkward moments: a SIGTERM while a reload is stuck building outputs, and SIGHUPs
that arrive before the event loop has installed its reload handler."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
from bridge_harness import UdpReceiver
from conftest import free_port, kill_if_running

REPO = Path(__file__).resolve().parent.parent

# The real daemon with one fault injected (the only part that is not the shipped code): a
# reload's output building hangs for 30 s, as a DNS lookup of an unreachable resolver does.
SLOW_RELOAD_RUN = textwrap.dedent("""
    import sys
    import time
    from vadbridge import reload
    from vadbridge.commands import main

    def hanging_build_sink(output, config):
        time.sleep(30)

    reload.build_sink = hanging_build_sink
    sys.exit(main(["run", "--config", sys.argv[1]]))
""")


def vmc_config(path: Path, vmc_port: int) -> Path:
    path.write_text(f"stats_interval_s: 0\ninputs: []\noutputs:\n"
                    f"  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}}}\n")
    return path


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def start_with_a_stuck_reload(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    config = vmc_config(tmp_path / "bridge.yaml", free_port(socket.SOCK_DGRAM))
    log = tmp_path / "bridge.log"
    with log.open("wb") as stderr:
        daemon = subprocess.Popen([sys.executable, "-c", SLOW_RELOAD_RUN, str(config)],
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    wait_for(lambda: b"streaming at" in log.read_bytes(), 30, "the daemon to stream")
    vmc_config(config, free_port(socket.SOCK_DGRAM))  # a new output: the reload builds a sink
    daemon.send_signal(signal.SIGHUP)
    time.sleep(0.3)  # the reload is now inside the hanging build
    return daemon, log


def test_sigterm_during_a_stuck_reload_exits_zero_within_1_5_s(tmp_path: Path) -> None:
    daemon, log = start_with_a_stuck_reload(tmp_path)
    try:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=1.5)
    finally:
        kill_if_running(daemon)
    text = log.read_text()
    assert code == 0, text
    assert "stopped: sent a neutral frame" in text
    assert "config reloaded" not in text and "Traceback" not in text


def test_a_second_sigterm_during_a_stuck_reload_still_ends_the_process(tmp_path: Path) -> None:
    daemon, log = start_with_a_stuck_reload(tmp_path)
    try:
        daemon.send_signal(signal.SIGTERM)
        time.sleep(0.02)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=1.5)
    finally:
        kill_if_running(daemon)
    # The second signal lands either on the running loop (exit 0) or after the loop closed,
    # where SIGTERM has its default meaning again.
    assert code in (0, -signal.SIGTERM), log.read_text()


def catches(pid: int, signum: int) -> bool:
    """Whether ``pid`` has a handler for ``signum`` (Linux: the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signum - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sighups_from_the_first_moment_of_run_never_kill_the_daemon(tmp_path: Path) -> None:
    vmc = UdpReceiver()
    config = vmc_config(tmp_path / "bridge.yaml", vmc.port)
    log = tmp_path / "bridge.log"
    with log.open("wb") as stderr:
        daemon = subprocess.Popen([sys.executable, "-m", "vadbridge", "run", "--config",
                                   str(config)], cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=stderr)
    try:
        # The first moment Python code can act on a signal: the handler run installs first.
        wait_for(lambda: catches(daemon.pid, signal.SIGHUP), 10, "a SIGHUP handler")
        started = time.monotonic()
        while time.monotonic() - started < 1.0:  # through model loading and loop start
            daemon.send_signal(signal.SIGHUP)
            time.sleep(0.02)
            assert daemon.poll() is None, log.read_text()
        wait_for(lambda: b"streaming at" in log.read_bytes(), 30, "the daemon to stream")
        assert vmc.receive(0.5), "no frames"
        # A SIGHUP caught before the loop's handler was installed is a reload request too.
        wait_for(lambda: b"config reloaded" in log.read_bytes(), 5, "a reload")
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=10)
    finally:
        kill_if_running(daemon)
        vmc.close()
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text


def test_started_with_sighup_ignored_no_sighup_from_the_first_instant_kills_it(
        tmp_path: Path) -> None:
    """The interpreter's own start-up (~13 ms after exec here) runs before any Python code, so
    only a process that starts with SIGHUP ignored is safe there: README "Running as a service"
    says to start it so (or under systemd's Type=notify, whose reloads wait for READY=1). An
    ignored disposition is inherited through fork and exec; the parent here ignores SIGHUP
    while it spawns, as a shell script's ``trap '' HUP`` does for its commands. SIGHUPs from
    the moment the process exists: none kills it, and a later one reloads."""
    vmc = UdpReceiver()
    config = vmc_config(tmp_path / "bridge.yaml", vmc.port)
    log = tmp_path / "bridge.log"
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with log.open("wb") as stderr:
            daemon = subprocess.Popen([sys.executable, "-m", "vadbridge", "run", "--config",
                                       str(config)], cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=stderr)
    finally:
        signal.signal(signal.SIGHUP, previous)
    try:
        started = time.monotonic()
        sent = sent_while_held = 0
        # Through exec, the interpreter, the imports and the model, and on until SIGHUPs have
        # also reached the holder (a slow machine may take longer than the second).
        while time.monotonic() - started < 1.0 or not sent_while_held:
            assert time.monotonic() - started < 30, "the holder was never installed"
            held = catches(daemon.pid, signal.SIGHUP)
            daemon.send_signal(signal.SIGHUP)
            sent += 1
            sent_while_held += held
            time.sleep(0.001)
            assert daemon.poll() is None, log.read_text()
        assert sent > 20 and sent_while_held
        wait_for(lambda: b"streaming at" in log.read_bytes(), 30, "the daemon to stream")
        assert vmc.receive(0.5), "no frames"
        wait_for(lambda: b"config reloaded" in log.read_bytes(), 5, "the held SIGHUP's reload")
        reloads = log.read_bytes().count(b"config reloaded")
        daemon.send_signal(signal.SIGHUP)  # the ignored disposition did not stick
        wait_for(lambda: log.read_bytes().count(b"config reloaded") > reloads, 5, "a reload")
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=10)
    finally:
        kill_if_running(daemon)
        vmc.close()
    assert code == 0, log.read_text()


def test_the_launcher_holds_sighup_before_importing_the_command_layer() -> None:
    """The console script's launcher (``vadbridge.__main__:main``) takes SIGHUP over before it
    imports anything slow: the package root and ``vadbridge.hangup`` pull in neither typing nor
    enum nor numpy, so only the interpreter's own start-up is left at the default disposition."""
    probe = (
        "import sys\n"
        "sys.argv = ['vadbridge', 'run', '--help']\n"
        "import vadbridge.__main__ as launcher\n"
        "loaded = set(sys.modules)\n"
        "assert not {'typing', 'enum', 'numpy', 'vadbridge.commands'} & loaded, loaded\n"
        "from vadbridge import hangup\n"
        "assert not {'typing', 'enum'} & set(sys.modules), 'hangup imports too much'\n"
        "import signal\n"
        "assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL\n"
        "try:\n"
        "    launcher.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "handler = signal.getsignal(signal.SIGHUP)\n"
        "assert callable(handler) and handler.__self__.__class__.__name__ == 'EarlyHangup'\n"
        "print('held')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("held")


def test_the_console_script_is_the_launcher() -> None:
    """pyproject's entry point is the launcher, not ``vadbridge.commands:main`` (which would
    import argparse and typing before it could hold a SIGHUP)."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vadbridge"] == "vadbridge.__main__:main"
