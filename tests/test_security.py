"""Security defaults (issue 6): loopback listeners, the OSC sender allow-list, per-sender rate
limits and payload size limits through the real daemon, and MQTT with a password file and TLS
against a real mosquitto (certificates generated per session by the ``test_pki`` fixture)."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from pathlib import Path

import pytest
from bridge_harness import (
    UdpReceiver,
    expected_vmc_frame,
    osc,
    running_bridge,
    send_osc,
    wait_for_frame,
    wait_until,
)
from conftest import Mosquitto, SecureMosquitto, free_port
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage

from vadbridge.config import BridgeConfig, OscInputConfig, parse_config
from vadbridge.daemon import Bridge
from vadbridge.inputs.admission import SenderAllowList
from vadbridge.model.emotions import emotion_to_vad
from vadbridge.wiring import load_model_engine


def osc_bundle(*messages: bytes) -> bytes:
    builder = OscBundleBuilder(IMMEDIATELY)
    for message in messages:
        builder.add_content(OscMessage(message))
    return bytes(builder.build().dgram)


def config(text: str, environ: dict[str, str] | None = None) -> BridgeConfig:
    return parse_config(text, "<test>", environ=environ or {})


def row_target(bridge: Bridge, avatar: str) -> list[float]:
    return [float(x) for x in bridge.table.target_vad[bridge.table.row(avatar)]]


def daemon_yaml(checkpoint: Path, vmc_port: int, source_yaml: str, extra: str = "",
                stats_interval_s: float = 0) -> str:
    """The daemon with one input (``source_yaml``, a flow mapping) and one VMC output."""
    return f"""
stats_interval_s: {stats_interval_s}
idle_refresh_hz: 0  # every frame: tests watch the stream go on
model: {{checkpoint: {checkpoint}}}
{extra}
inputs:
  - {source_yaml}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}}}
"""


# --- listeners bind loopback unless configured ------------------------------------------------


def test_the_default_config_listens_on_loopback_only() -> None:
    defaults = parse_config("", "<test>", environ={})
    osc_inputs = [source for source in defaults.inputs if isinstance(source, OscInputConfig)]
    assert [source.host for source in osc_inputs] == ["127.0.0.1"]
    assert [source.allow_hosts for source in osc_inputs] == [()]
    # The MQTT input is a client, not a listener; its default broker is local too.
    assert [s.host for s in defaults.inputs if s.type == "mqtt"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("host", "allow", "warning"),
    [
        ("127.0.0.1", "", None),
        ("0.0.0.0", "", "anyone who can reach this port can drive the avatars"),
        ("0.0.0.0", "allow_hosts: [192.168.1.0/24]",
         "accepting datagrams only from 192.168.1.0/24"),
    ],
)
def test_binding_a_non_loopback_address_logs_a_warning(
    host: str, allow: str, warning: str | None, vmc: UdpReceiver, random_checkpoint: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    text = daemon_yaml(random_checkpoint, vmc.port,
                       f"{{type: osc, host: {host}, port: {port}, {allow}}}")
    with caplog.at_level(logging.DEBUG, logger="vadbridge.inputs.osc"), \
            running_bridge(config(text)):
        pass
    osc_lines = [r for r in caplog.records if r.name == "vadbridge.inputs.osc"]
    warnings = [r.getMessage() for r in osc_lines if r.levelno >= logging.WARNING]
    if warning is None:
        assert warnings == []
        assert [r.getMessage() for r in osc_lines] == [f"OSC input listening on {host}:{port}"]
    else:
        assert len(warnings) == 1
        assert f"{host}:{port}, not a loopback address" in warnings[0]
        assert warning in warnings[0]


# --- the OSC sender allow-list ------------------------------------------------------------------


def test_allow_list_matches_addresses_and_networks_of_both_families() -> None:
    allow = SenderAllowList(["192.168.1.20", "10.0.0.0/8", "::1", "fd00::/8"])
    verdicts = {host: allow.allows(host) for host in [
        "192.168.1.20", "192.168.1.21", "10.255.0.1", "11.0.0.1", "::1", "::2", "fd12::7",
        "::ffff:10.1.2.3",  # an IPv4 peer as a dual-stack socket reports it
        "::ffff:11.1.2.3", "fe80::1%eth0", "not-an-address", "",
    ]}
    assert verdicts == {
        "192.168.1.20": True, "192.168.1.21": False, "10.255.0.1": True, "11.0.0.1": False,
        "::1": True, "::2": False, "fd12::7": True, "::ffff:10.1.2.3": True,
        "::ffff:11.1.2.3": False, "fe80::1%eth0": False, "not-an-address": False, "": False,
    }


def test_allow_list_accepts_parsed_networks_of_any_size() -> None:
    allow = SenderAllowList([ipaddress.ip_network("0.0.0.0/1")])  # 2**31 addresses, no expansion
    assert (allow.allows("127.0.0.1"), allow.allows("128.0.0.1")) == (True, False)


def test_allow_list_cache_stays_bounded_under_a_spoofed_flood() -> None:
    allow = SenderAllowList(["10.0.0.0/16"], max_cached_hosts=32)
    accepted = sum(allow.allows(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
                   for i in range(100_000))
    assert accepted == 65_536
    assert allow.cached_hosts() == 32
    assert allow.allows("10.0.0.1") and not allow.allows("10.1.0.1")  # evicted: checked again


@pytest.mark.parametrize(
    ("networks", "match"),
    [([], "at least one"), (["example.com"], "'example.com' is not an IP address")],
)
def test_allow_list_refuses_bad_entries(networks: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SenderAllowList(networks)


def test_daemon_accepts_osc_only_from_allowed_networks(
    vmc: UdpReceiver, random_checkpoint: Path
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    text = daemon_yaml(random_checkpoint, vmc.port,
                       f"{{type: osc, host: 127.0.0.1, port: {port}, "
                       "allow_hosts: [127.0.0.2/31, 10.0.0.0/8]}")
    with running_bridge(config(text)) as bridge:
        send_osc(port, osc("/vad", 0.9, 0.9, 0.9))  # from 127.0.0.1: not listed
        for source_ip, valence in [("127.0.0.3", 0.5), ("127.0.0.4", -0.9)]:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.bind((source_ip, 0))
                sender.sendto(osc("/vad", valence, 0.0, 0.0), ("127.0.0.1", port))
        stats = bridge.input_stats
        wait_until(lambda: stats.accepted_total + stats.rejected_total == 3, "3 datagrams")
        target = row_target(bridge, "default")
        snapshot = stats.snapshot()
    assert snapshot["accepted"] == {"osc": 1}
    assert snapshot["rejected"] == {"osc.sender": 2}
    assert target == [0.5, 0.0, 0.0]


# --- rate limits through the daemon -----------------------------------------------------------

# 0.001/s: a burst of one message, then one more every 1000 s. Nothing refills during a test,
# so the counts are exact however slow the machine is.
SLOW_RATE = "limits: {rate_limit_per_source: 0.001}"


def test_daemon_rate_limits_each_osc_sender_ip(vmc: UdpReceiver, random_checkpoint: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    source_yaml = f"{{type: osc, host: 127.0.0.1, port: {port}}}"
    text = daemon_yaml(random_checkpoint, vmc.port, source_yaml, SLOW_RATE)
    with running_bridge(config(text)) as bridge:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder:
            flooder.bind(("127.0.0.2", 0))
            for step in range(50):
                flooder.sendto(osc("/avatar/flood/vad", step / 100, 0.0, 0.0), ("127.0.0.1", port))
        send_osc(port, osc("/avatar/polite/vad", -0.5, 0.25, 0.0))
        stats = bridge.input_stats
        wait_until(lambda: stats.accepted_total + stats.rejected_total == 51, "51 datagrams")
        targets = {avatar: row_target(bridge, avatar) for avatar in ("flood", "polite")}
        snapshot = stats.snapshot()
    assert snapshot["accepted"] == {"osc": 2}
    assert snapshot["rejected"] == {"rate_limit": 49}
    assert targets == {"flood": [0.0, 0.0, 0.0], "polite": [-0.5, 0.25, 0.0]}


def test_daemon_rate_limits_each_mqtt_avatar(
    mosquitto: Mosquitto, vmc: UdpReceiver, random_checkpoint: Path
) -> None:
    source_yaml = f"{{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}}}"
    text = daemon_yaml(random_checkpoint, vmc.port, source_yaml, SLOW_RATE)
    with running_bridge(config(text)) as bridge:
        source = bridge.sources[0]
        wait_until(lambda: bool(getattr(source, "connected", False)), "the MQTT connection")
        flood = [("vadbridge/flood/vad", f"{step / 100} 0 0") for step in range(30)]
        mosquitto.publish_sync([*flood[:15], ("vadbridge/polite/vad", "-0.5 0.25 0"),
                                *flood[15:]])
        stats = bridge.input_stats
        wait_until(lambda: stats.accepted_total + stats.rejected_total == 31, "31 messages")
        targets = {avatar: row_target(bridge, avatar) for avatar in ("flood", "polite")}
        snapshot = stats.snapshot()
    assert snapshot["accepted"] == {"mqtt": 2}
    assert snapshot["rejected"] == {"rate_limit": 29}
    assert targets == {"flood": [0.0, 0.0, 0.0], "polite": [-0.5, 0.25, 0.0]}


def test_rate_limit_rejections_are_logged_once_per_interval(
    vmc: UdpReceiver, random_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    source_yaml = f"{{type: osc, host: 127.0.0.1, port: {port}}}"
    text = daemon_yaml(random_checkpoint, vmc.port, source_yaml, SLOW_RATE, stats_interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="vadbridge.inputs"), \
            running_bridge(config(text)) as bridge:
        for _ in range(40):
            send_osc(port, osc("/vad", 0.1, 0.1, 0.1))
        stats = bridge.input_stats
        wait_until(lambda: stats.accepted_total + stats.rejected_total == 40, "40 datagrams")
    lines = [r.getMessage() for r in caplog.records if "rate_limit" in r.getMessage()]
    assert lines == ["rejected input (rate_limit): OSC from 127.0.0.1: over 0.001 datagrams/s"]


# --- payload size limits through the daemon ---------------------------------------------------


def test_daemon_drops_osc_datagrams_over_max_payload_bytes(
    vmc: UdpReceiver, random_checkpoint: Path
) -> None:
    fits = osc_bundle(osc("/vad/valence", 0.5), osc("/vad/arousal", 0.25))
    too_big = osc_bundle(osc("/vad/valence", -0.5), osc("/vad/arousal", -0.25),
                         osc("/vad/dominance", -0.75))
    port = free_port(socket.SOCK_DGRAM)
    source_yaml = f"{{type: osc, host: 127.0.0.1, port: {port}}}"
    limits = f"limits: {{max_payload_bytes: {len(fits)}}}"
    text = daemon_yaml(random_checkpoint, vmc.port, source_yaml, limits)
    with running_bridge(config(text)) as bridge:
        send_osc(port, too_big)
        send_osc(port, fits)
        stats = bridge.input_stats
        wait_until(lambda: stats.accepted_total + stats.rejected_total == 3, "3 inputs")
        target = row_target(bridge, "default")
        snapshot = stats.snapshot()
    assert snapshot["rejected"] == {"oversize": 1}
    assert snapshot["accepted"] == {"osc": 2}  # the two messages of the bundle that fits
    assert target == [0.5, 0.25, 0.0]


def test_daemon_drops_mqtt_payloads_over_max_payload_bytes(
    mosquitto: Mosquitto, vmc: UdpReceiver, random_checkpoint: Path
) -> None:
    limit = 100
    exactly = json.dumps({"valence": 0.5, "arousal": -0.25}).ljust(limit)  # JSON allows spaces
    one_more = json.dumps({"valence": -0.5}).ljust(limit + 1)
    source_yaml = f"{{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}}}"
    limits = f"limits: {{max_payload_bytes: {limit}}}"
    text = daemon_yaml(random_checkpoint, vmc.port, source_yaml, limits)
    with running_bridge(config(text)) as bridge:
        source = bridge.sources[0]
        wait_until(lambda: bool(getattr(source, "connected", False)), "the MQTT connection")
        mosquitto.publish_sync([("vadbridge/default/vad", exactly),
                                ("vadbridge/default/vad", one_more)])
        stats = bridge.input_stats
        wait_until(lambda: stats.accepted_total + stats.rejected_total == 2, "2 messages")
        target = row_target(bridge, "default")
        snapshot = stats.snapshot()
    assert (len(exactly), len(one_more)) == (limit, limit + 1)
    assert snapshot["rejected"] == {"oversize": 1}
    assert snapshot["accepted"] == {"mqtt": 1}
    assert target == [0.5, -0.25, 0.0]


# --- MQTT credentials and TLS against a real mosquitto -----------------------------------------


def mqtt_yaml(checkpoint: Path, vmc_port: int, *, port: int, credentials: str, tls: str) -> str:
    return f"""
stats_interval_s: 0
idle_refresh_hz: 0  # every frame: tests watch the stream go on
model: {{checkpoint: {checkpoint}}}
smoothing: {{tau_ms: 0}}
inputs:
  - type: mqtt
    host: 127.0.0.1
    port: {port}
    reconnect_max_s: 0.2
    {credentials}
    tls: {tls}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}}}
"""


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # aiomqtt sets its "mqtt" logger (paho's protocol trace) to WARNING at import; open it too.
    caplog.set_level(logging.DEBUG, logger="mqtt")


def assert_secret_never_logged(caplog: pytest.LogCaptureFixture, secret: str, *,
                               connect_sent: bool = True) -> None:
    # The capture reached down to the MQTT library's packet trace ...
    sent = any(r.name == "mqtt" and "Sending CONNECT" in r.getMessage() for r in caplog.records)
    assert sent == connect_sent
    # ... and no line holds the secret, neither as a message nor formatted.
    for record in caplog.records:
        assert secret not in record.getMessage(), record.getMessage()
    assert secret not in caplog.text


def test_wrong_password_logs_one_auth_error_keeps_streaming_and_retrying(
    secure_mosquitto: SecureMosquitto, vmc: UdpReceiver, random_checkpoint: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "Wr0ng-Passw0rd-for-test"
    broker = secure_mosquitto
    text = mqtt_yaml(random_checkpoint, vmc.port, port=broker.tls_port,
                     credentials=f"username: {broker.username}\n    password: {wrong}",
                     tls=f"{{ca_file: {broker.pki.ca_cert}}}")
    capture_everything(caplog)
    with running_bridge(config(text)) as bridge:
        source = bridge.sources[0]

        def retries() -> int:
            return sum("failed again" in r.getMessage() for r in caplog.records)

        wait_until(lambda: retries() >= 2, "two retries after the first refusal")
        frames = vmc.receive(0.3)
        assert not getattr(source, "connected", True)
    assert len(frames) >= 2  # the stream went on while the broker refused us
    mqtt_lines = [r for r in caplog.records if r.name == "vadbridge.inputs.mqtt"]
    loud = [r for r in mqtt_lines if r.levelno >= logging.WARNING]
    assert len(loud) == 1
    assert loud[0].levelno == logging.ERROR
    assert loud[0].getMessage().startswith(
        f"MQTT broker 127.0.0.1:{broker.tls_port} refused the credentials of user 'bridge' "
        "([code:135] Not authorized): check username and password/password_env"
    )
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert_secret_never_logged(caplog, wrong)
    assert "not authorised" in broker.log_text()  # mosquitto saw and refused the attempts


@pytest.mark.parametrize("protocol", [4, 5])
def test_right_password_from_the_environment_over_tls_moves_the_face(
    protocol: int, secure_mosquitto: SecureMosquitto, vmc: UdpReceiver, random_checkpoint: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = secure_mosquitto
    text = mqtt_yaml(random_checkpoint, vmc.port, port=broker.tls_port,
                     credentials=f"username: {broker.username}\n    password_env: VB_MQTT_PASSWORD"
                                 f"\n    protocol: {protocol}",
                     tls=f"{{ca_file: {broker.pki.ca_cert}}}")
    capture_everything(caplog)
    bridge_config = config(text, environ={"VB_MQTT_PASSWORD": broker.password})
    assert broker.password not in repr(bridge_config)
    with running_bridge(bridge_config) as bridge:
        source = bridge.sources[0]
        wait_until(lambda: bool(getattr(source, "connected", False)), "the TLS connection")
        broker.publish_sync([("vadbridge/default/vad", "0.6 -0.3 0.2")])
        engine = load_model_engine(config(f"model: {{checkpoint: {random_checkpoint}}}"))
        expected = expected_vmc_frame(engine, (0.6, -0.3, 0.2))
        assert wait_for_frame(vmc, expected), "the output never showed the expected frame"
        assert bridge.input_stats.snapshot()["accepted"] == {"mqtt": 1}
    assert_secret_never_logged(caplog, broker.password)
    # The bridge's and the MQTT library's loggers: asyncio may log the garbage collection of an
    # aiomqtt helper task left behind by another test's event loop, which says nothing here.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING
                and r.name.startswith(("vadbridge", "mqtt"))]


def test_listener_requiring_a_client_certificate_accepts_the_configured_one(
    secure_mosquitto: SecureMosquitto, vmc: UdpReceiver, random_checkpoint: Path,
) -> None:
    broker, pki = secure_mosquitto, secure_mosquitto.pki
    text = mqtt_yaml(random_checkpoint, vmc.port, port=broker.mtls_port, credentials="",
                     tls=f"{{ca_file: {pki.ca_cert}, cert_file: {pki.client_cert}, "
                         f"key_file: {pki.client_key}}}")
    with running_bridge(config(text)) as bridge:
        source = bridge.sources[0]
        wait_until(lambda: bool(getattr(source, "connected", False)), "the mutual-TLS connection")
        broker.publish_sync([("vadbridge/default/emotion", "happiness")])
        wait_until(lambda: bridge.input_stats.accepted_total == 1, "the message")
        target = row_target(bridge, "default")
    assert target == pytest.approx([float(x) for x in emotion_to_vad("happiness")], abs=1e-6)


def test_an_untrusted_broker_certificate_is_a_warning_not_a_traceback(
    secure_mosquitto: SecureMosquitto, vmc: UdpReceiver, random_checkpoint: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = secure_mosquitto
    # The client certificate is no CA: the broker's chain cannot be verified against it.
    text = mqtt_yaml(random_checkpoint, vmc.port, port=broker.tls_port,
                     credentials=f"username: {broker.username}\n    password: {broker.password}",
                     tls=f"{{ca_file: {broker.pki.client_cert}}}")
    capture_everything(caplog)
    with running_bridge(config(text)):
        wait_until(lambda: any("failed again" in r.getMessage() for r in caplog.records),
                   "a retry")
        frames = vmc.receive(0.2)
    assert len(frames) >= 2
    loud = [r.getMessage() for r in caplog.records
            if r.name == "vadbridge.inputs.mqtt" and r.levelno >= logging.WARNING]
    assert len(loud) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in loud[0]
    assert all(r.exc_info is None for r in caplog.records)
    # The handshake failed, so the credentials never left the machine.
    assert_secret_never_logged(caplog, broker.password, connect_sent=False)
