"""``vadbridge run`` and the control panel (issue 15): the ``web:`` section validated at load,
``--web HOST:PORT``, ``--check`` and the banner naming the page, a taken port failing at start,
and a bridge without the panel that runs with aiohttp missing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from bridge_harness import UdpReceiver, vmc_frame_values
from conftest import free_port, kill_if_running
from models import cli_script_without

from vadbridge.commands import main
from vadbridge.config import ConfigError, WebConfig, apply_overrides, parse_config

REPO = Path(__file__).resolve().parent.parent

# `vadbridge ARGV` with every import of aiohttp failing, as on a machine without the web extra.
_RUN_WITHOUT_AIOHTTP = cli_script_without("aiohttp")

def write_config(tmp_path: Path, vmc_port: int, web: str = "") -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"stats_interval_s: 0\ninputs: []\n"
                    f"outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc_port}}}]\n{web}")
    return path


def run_without_aiohttp(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _RUN_WITHOUT_AIOHTTP, *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupted(process: subprocess.Popen[str]) -> str:
    """Ctrl+C for ``process``; its stderr once it exited (killed if it hangs)."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=10)[1]
    finally:
        kill_if_running(process)


def test_the_bridge_runs_without_aiohttp_when_the_panel_is_off(tmp_path: Path,
                                                              vmc: UdpReceiver) -> None:
    process = run_without_aiohttp(["run", "--config", str(write_config(tmp_path, vmc.port))])
    try:
        frames = vmc.receive(3.0)
    finally:
        stderr = interrupted(process)
    assert frames and len(vmc_frame_values(frames[-1][1])) == 52
    assert process.returncode == 0, stderr
    assert "aiohttp" not in stderr


def test_the_panel_without_aiohttp_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(socket.SOCK_DGRAM))
    for extra in ([], ["--check"]):
        process = run_without_aiohttp(["run", "--config", str(config), "--web",
                                       f"127.0.0.1:{free_port()}", *extra])
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 2
        assert stderr.splitlines() == [
            "vadbridge run: the control panel needs aiohttp: pip install 'vadbridge[web]'"]


def test_the_web_section_is_validated_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def error(text: str) -> str:
        with pytest.raises(ConfigError) as caught:
            parse_config(text, "<test>")
        return str(caught.value)

    assert parse_config("", "<test>").web == WebConfig()
    assert not WebConfig().enabled and WebConfig().host == "127.0.0.1"
    assert "web.port: expected an integer 1..65535, got 0" in error("web: {port: 0}\n")
    assert "web.fps: expected an integer 1..60" in error("web: {fps: 120}\n")
    assert "web.max_clients" in error("web: {max_clients: 0}\n")
    assert "web.token_env: expected environment variable NO_SUCH_TOKEN_VAR to be set" in error(
        "web: {token_env: NO_SUCH_TOKEN_VAR}\n")
    monkeypatch.setenv("SHORT_TOKEN", "tiny")
    message = error("web: {token_env: SHORT_TOKEN}\n")
    assert "web.token_env: expected environment variable SHORT_TOKEN to hold a token" in message
    assert "tiny" not in message  # a secret is never shown
    assert "web.token: expected a token" in error("web: {token: 'short'}\n")
    assert "short" not in error("web: {token: 'short'}\n")


def test_a_token_is_needed_on_any_host_but_loopback() -> None:
    assert not WebConfig().needs_token
    assert not WebConfig(host="localhost").needs_token and not WebConfig(host="::1").needs_token
    assert WebConfig(host="0.0.0.0").needs_token and WebConfig(host="192.168.1.5").needs_token
    assert WebConfig(host="my-pc.local").needs_token  # a name may resolve to any interface
    assert WebConfig(token="a" * 16).needs_token  # configured: required on loopback too


def test_the_web_flag_turns_the_panel_on_at_an_address() -> None:
    config = apply_overrides(parse_config("", "<test>"), web="[::1]:8900")
    assert (config.web.enabled, config.web.host, config.web.port) == (True, "::1", 8900)
    with pytest.raises(ConfigError, match="--web"):
        apply_overrides(parse_config("", "<test>"), web="8900")


def test_check_reports_the_panel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, 39540, "web: {enabled: true, port: 8801}\n")
    assert main(["run", "--config", str(config), "--check"]) == 0
    assert "web: control panel on http://127.0.0.1:8801/ (loopback: no token)" in (
        capsys.readouterr().out)
    assert main(["run", "--config", str(config), "--check", "--web", "0.0.0.0:8802"]) == 0
    assert ("web: control panel on http://0.0.0.0:8802/ (token required: a random one is "
            "printed at start)") in capsys.readouterr().out


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vadbridge", "run", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_banner_names_the_page_and_the_bridge_serves_it(tmp_path: Path,
                                                            vmc: UdpReceiver) -> None:
    import urllib.request

    port = free_port()
    process = start(["--config", str(write_config(tmp_path, vmc.port)),
                     "--web", f"127.0.0.1:{port}"])
    try:
        assert vmc.receive(3.0), "no frames"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            page = response.read()
    finally:
        stderr = interrupted(process)
    assert b"<title>vadbridge control panel</title>" in page
    assert process.returncode == 0, stderr
    assert f"control panel: http://127.0.0.1:{port}/ (loopback only, no token)" in stderr


def test_a_taken_panel_port_fails_at_start_naming_the_panel(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start(["--config", str(write_config(tmp_path, free_port(socket.SOCK_DGRAM))),
                         "--web", f"127.0.0.1:{port}"])
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"vadbridge run: control panel 127.0.0.1:{port}: Address already in use" in stderr
    assert "Traceback" not in stderr


def test_a_generated_token_is_printed_with_the_pages_address() -> None:
    from vadbridge.commands.run import panel_banner_line
    from vadbridge.web import ControlPanel

    panel = ControlPanel(WebConfig(enabled=True, host="0.0.0.0"), None, None)  # type: ignore[arg-type]
    line = panel_banner_line(panel)
    assert panel.generated_token and panel.token is not None and len(panel.token) >= 16
    assert line == f"control panel: http://0.0.0.0:8800/#token={panel.token} (token required)"
