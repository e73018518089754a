"""Hostile configs (issue 12, items 8 and 9): each is one line ``file:line: key: ...`` and exit 2,
never a traceback, and no secret value ever appears in any message."""

from __future__ import annotations

from pathlib import Path

import pytest

from vadbridge.commands import main
from vadbridge.config import ConfigError, load_config
from vadbridge.config.loader import MAX_CONFIG_BYTES

HUGE = "1" * 400
MQTT_IN = "inputs:\n  - {type: mqtt, "

# (id, config text, "line: key" the error names, or None for an error about the whole file)
BAD = [
    ("huge_frame_rate", f"frame_rate: {HUGE}\n", "1: frame_rate"),
    ("huge_stats_interval", f"stats_interval_s: {HUGE}\n", "1: stats_interval_s"),
    ("huge_tau", f"smoothing:\n  tau_ms: {HUGE}\n", "2: smoothing.tau_ms"),
    ("huge_negative_rate", f"limits: {{rate_limit_per_source: -{HUGE}}}\n",
     "1: limits.rate_limit_per_source"),
    ("huge_blink_interval", f"liveliness: {{blink_interval_s: [{HUGE}, 2]}}\n",
     "1: liveliness.blink_interval_s[0]"),
    ("huge_seed", f"liveliness: {{seed: {HUGE}}}\n", "1: liveliness.seed"),
    ("huge_port", f"outputs:\n  - {{type: vmc, port: {HUGE}}}\n", "2: outputs[0].port"),
    ("huge_rate_hz", f"outputs:\n  - {{type: mqtt, rate_hz: {HUGE}}}\n", "2: outputs[0].rate_hz"),
    ("huge_reconnect", f"{MQTT_IN}reconnect_max_s: {HUGE}}}\n", "2: inputs[0].reconnect_max_s"),
    ("huge_host", f"{MQTT_IN}host: {HUGE}}}\n", "2: inputs[0].host"),
    ("huge_float", "smoothing: {idle_timeout_s: 1e300}\n", "1: smoothing.idle_timeout_s"),
    ("surrogate_topic_prefix", f'{MQTT_IN}topic_prefix: "vb\\ud800"}}\n',
     "2: inputs[0].topic_prefix"),
    ("surrogate_username", f'{MQTT_IN}username: "u\\ud800"}}\n', "2: inputs[0].username"),
    ("surrogate_client_id", f'{MQTT_IN}client_id: "c\\udfff"}}\n', "2: inputs[0].client_id"),
    ("surrogate_subject", 'outputs:\n  - {type: livelink, subject: "s\\ud800"}\n',
     "2: outputs[0].subject"),
    ("surrogate_output_topic", 'outputs:\n  - {type: mqtt, topic: "t/\\ud800"}\n',
     "2: outputs[0].topic"),
    ("nul_byte", "frame_rate: 30\nlog_level: info\x00\n", "2"),
    ("control_character", "frame_rate: 30\n\nlog_level: \x01info\n", "3"),
    ("stats_interval_tiny", "stats_interval_s: 0.000001\n", "1: stats_interval_s"),
    ("stats_interval_below_minimum", "stats_interval_s: 0.09\n", "1: stats_interval_s"),
    ("over_large_file", "#" * (MAX_CONFIG_BYTES + 1), None),
    ("dev_zero", "/dev/zero", None),
    ("directory", "<directory>", None),
]


def _path(tmp_path: Path, text: str) -> Path:
    if text == "/dev/zero":
        return Path(text)
    if text == "<directory>":
        return tmp_path
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _where(path: Path, at: str | None) -> str:
    return f"{path}: " if at is None else f"{path}:{at}"


@pytest.mark.parametrize(("text", "at"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_hostile_config_is_one_line_naming_file_line_and_key_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, at: str | None) -> None:
    path = _path(tmp_path, text)
    assert main(["run", "--config", str(path), "--check"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"vadbridge run: {_where(path, at)}"), lines[0]
    if at is not None and ":" in at:  # a key: the line goes on with what it expected
        assert lines[0].startswith(f"vadbridge run: {path}:{at}: expected "), lines[0]
    assert len(lines[0]) < 600
    assert out == ""


@pytest.mark.parametrize(("text", "at"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_reload_rejects_a_hostile_config_with_the_same_reason(
        tmp_path: Path, text: str, at: str | None) -> None:
    # The SIGHUP reloader calls load_config and keeps the running config on a ConfigError.
    path = _path(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(_where(path, at))
    assert "\n" not in str(caught.value)


def test_a_stats_interval_of_zero_or_the_minimum_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    for value, expected in (("0", 0.0), ("0.1", 0.1), ("3600", 3600.0)):
        path.write_text(f"stats_interval_s: {value}\n")
        assert load_config(path).stats_interval_s == expected


def test_a_config_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    text = "frame_rate: 30\n"
    path.write_text(text + "#" * (MAX_CONFIG_BYTES - len(text)))
    assert load_config(path).frame_rate == 30


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    mkfifo = getattr(__import__("os"), "mkfifo", None)
    if mkfifo is None:
        pytest.skip("no FIFOs on this platform")
    path = tmp_path / "fifo.yaml"
    mkfifo(path)
    with pytest.raises(ConfigError, match="a regular config file, got a FIFO"):
        load_config(path)


# ---------------------------------------------------------------- secrets are never shown

PASSWORD = "84736251"
PASTED = "s3cr3t-P@ss!word"
PASTED_VALID_NAME = "hunter2secret"  # a lowercase password is a valid variable name too

SECRET_LEAKS = [
    ("password_number", f"password: {PASSWORD}", "inputs[0].password: expected a string, "
                                                 "got a number"),
    ("password_list", f"password: [{PASSWORD}]", "inputs[0].password: expected a string, "
                                                 "got a list"),
    ("password_bad_tag", f"password: !!int {PASSWORD}x", "inputs[0].password: expected a string"),
    ("password_surrogate", f'password: "{PASSWORD}\\ud800"', "inputs[0].password: expected"),
    ("password_in_password_env", f"password_env: '{PASTED}'",
     "(the value is not shown: it may be a secret)"),
    ("number_in_password_env", f"password_env: {PASSWORD}",
     "a number, not a valid environment variable name (the value is not shown"),
    ("password_env_unset_lowercase", f"password_env: {PASTED_VALID_NAME}",
     "inputs[0].password_env: expected the environment variable it names to be set"),
]


@pytest.mark.parametrize(("line", "message"), [case[1:] for case in SECRET_LEAKS],
                         ids=[case[0] for case in SECRET_LEAKS])
def test_no_secret_appears_in_any_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch,
                                          line: str, message: str) -> None:
    monkeypatch.delenv(PASTED_VALID_NAME, raising=False)
    path = tmp_path / "secret.yaml"
    path.write_text(f"inputs:\n  - type: mqtt\n    username: u\n    {line}\n")
    assert main(["run", "--config", str(path), "--check"]) == 2
    out, err = capsys.readouterr()
    assert message in err
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    for text in (out, err, str(caught.value), repr(caught.value), caught.value.got,
                 caught.value.expected):
        for secret in (PASSWORD, PASTED, PASTED_VALID_NAME):
            assert secret not in text, text


def test_an_unset_upper_case_variable_is_still_named(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VADBRIDGE_TEST_UNSET", raising=False)
    path = tmp_path / "env.yaml"
    path.write_text("inputs:\n  - {type: mqtt, username: u, password_env: VADBRIDGE_TEST_UNSET}\n")
    with pytest.raises(ConfigError, match="environment variable VADBRIDGE_TEST_UNSET to be set"):
        load_config(path)


def test_a_secret_pasted_into_the_panels_token_env_is_not_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel's token_env is read by the same rule as MQTT's password_env."""
    monkeypatch.delenv(PASTED_VALID_NAME, raising=False)
    path = tmp_path / "web.yaml"
    path.write_text(f"web: {{token_env: {PASTED_VALID_NAME}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "web.token_env: expected the environment variable it names to be set" in str(
        caught.value)
    for text in (str(caught.value), repr(caught.value), caught.value.got, caught.value.expected):
        assert PASTED_VALID_NAME not in text, text
