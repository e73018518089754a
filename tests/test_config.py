"""The config: YAML → frozen dataclasses; each bad value is one ConfigError naming file/line/key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vadbridge.config import (
    AVATAR_ID_PATTERN,
    FRAME_RATE_RANGE,
    PORT_RANGE,
    BridgeConfig,
    ConfigError,
    LiveLinkOutputConfig,
    ModelConfig,
    MqttInputConfig,
    MqttOutputConfig,
    OscInputConfig,
    OscOutputConfig,
    RecordOutputConfig,
    Shard,
    VmcOutputConfig,
    apply_overrides,
    format_config_error,
    is_port,
    load_config,
    parse_config,
    parse_host_port,
    render_markdown,
)
from vadbridge.outputs import OscEncoder

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"
EXAMPLES = ("default", "vseeface", "unreal-livelink", "unity-osc", "mqtt-sentiment",
            "ifacialmocap", "vtube-studio")
ENV = {"MQTT_PASSWORD": "s3cret-from-env"}


def write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- defaults and examples


def test_builtin_defaults_equal_config_default_yaml() -> None:
    assert load_config(None) == load_config(CONFIG_DIR / "default.yaml") == BridgeConfig()


def test_default_config_has_osc_and_mqtt_inputs_and_a_vmc_output() -> None:
    config = load_config(None)
    assert config.inputs == (OscInputConfig(port=9000), MqttInputConfig(port=1883))
    assert config.outputs == (VmcOutputConfig(port=39539, naming="perfect_sync"),)
    assert [source.host for source in config.inputs] == ["127.0.0.1", "127.0.0.1"]
    assert config.frame_rate == 60
    assert config.frame_period_s == pytest.approx(1 / 60)
    assert (config.smoothing.attack_s, config.smoothing.release_s) == (0.12, 0.3)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "null\n", "~"])
def test_an_empty_document_means_all_defaults(text: str) -> None:
    assert parse_config(text, "empty.yaml") == BridgeConfig()


def test_every_example_config_is_listed() -> None:
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted(EXAMPLES)


def test_vseeface_example_sends_perfect_sync_vmc_and_listens_for_osc() -> None:
    config = load_config(CONFIG_DIR / "vseeface.yaml", environ={})
    assert config.outputs == (VmcOutputConfig(port=39539, naming="perfect_sync"),)
    assert [type(source) for source in config.inputs] == [OscInputConfig]
    assert (config.smoothing.attack_ms, config.smoothing.release_ms) == (160.0, 400.0)


def test_unreal_example_sends_live_link_to_11111() -> None:
    config = load_config(CONFIG_DIR / "unreal-livelink.yaml", environ={})
    assert config.outputs == (
        LiveLinkOutputConfig(port=11111, subject="vadbridge"),)
    assert len(config.outputs[0].device_id) == 36  # derived from the subject


def test_unity_example_sends_per_shape_osc_to_uosc_default_port() -> None:
    config = load_config(CONFIG_DIR / "unity-osc.yaml", environ={})
    assert config.outputs == (OscOutputConfig(port=3333, mode="per_shape", prefix="/blendshape"),)


def test_unity_example_array_variant_is_valid_when_uncommented() -> None:
    text = (CONFIG_DIR / "unity-osc.yaml").read_text(encoding="utf-8")
    start = text.index("  # - type: osc")
    variant = text[:start] + "\n".join(line.replace("# ", "", 1)
                                       for line in text[start:].splitlines())
    config = parse_config(variant, str(CONFIG_DIR / "unity-osc.yaml"))
    assert config.outputs[1] == OscOutputConfig(port=3334, mode="array", prefix="/blendshapes")


def test_unity_example_states_the_array_message_sizes_the_encoder_sends() -> None:
    text = (CONFIG_DIR / "unity-osc.yaml").read_text(encoding="utf-8")
    ours = OscEncoder(mode="array", prefix="/blendshapes").datagram_sizes
    default = OscEncoder(mode="array").datagram_sizes
    assert f"{ours[0]} bytes with this prefix ({default[0]} with the default /blendshape)" in (
        " ".join(line.strip().lstrip("# ") for line in text.splitlines())
    )


def test_mqtt_sentiment_example_reads_the_password_from_the_environment() -> None:
    config = load_config(CONFIG_DIR / "mqtt-sentiment.yaml", environ=ENV)
    (source,) = config.inputs
    assert isinstance(source, MqttInputConfig)
    assert source.password == "s3cret-from-env"
    assert (source.username, source.password_env) == ("vadbridge", "MQTT_PASSWORD")
    assert config.smoothing.idle_timeout_s == 20.0
    assert config.outputs == (VmcOutputConfig(),)


def test_mqtt_sentiment_example_without_its_variable_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CONFIG_DIR / "mqtt-sentiment.yaml", environ={})
    assert caught.value.key_path == "inputs[0].password_env"
    assert "MQTT_PASSWORD" in caught.value.expected


# ---------------------------------------------------------------- one bad config per rule

BAD = [
    # (id, yaml, key path, line, fragment of `expected`, fragment of `got`)
    ("frame_rate_low", "frame_rate: 0\n", "frame_rate", 1, "an integer 1..240", "0"),
    ("frame_rate_high", "\nframe_rate: 241\n", "frame_rate", 2, "an integer 1..240", "241"),
    ("frame_rate_float", "frame_rate: 60.5\n", "frame_rate", 1, "an integer 1..240", "60.5"),
    ("frame_rate_bool", "frame_rate: true\n", "frame_rate", 1, "an integer 1..240", "true"),
    ("stats_string", "stats_interval_s: '10'\n", "stats_interval_s", 1,
     "0 (off) or a number >= 0.1", "'10'"),
    ("log_level", "log_level: verbose\n", "log_level", 1, "one of debug, info", "'verbose'"),
    ("unknown_top_key", "frame_rat: 60\n", "frame_rat", 1, "one of the keys avatars,",
     "did you mean 'frame_rate'"),
    ("duplicate_key", "model:\n  symmetry: true\n  symmetry: false\n", "model.symmetry", 3,
     "each key once", "first at line 2"),
    ("non_string_key", "smoothing:\n  1: 2\n", "smoothing.?", 2, "a plain string key", "1"),
    ("top_level_list", "- 1\n", "(top level)", 1, "a mapping", "a list"),
    ("section_scalar", "model: 5\n", "model", 1, "a mapping", "5"),
    ("engine", "model: {engine: onnx}\n", "model.engine", 1, "one of mlp, lut", "'onnx'"),
    ("tau_negative", "smoothing:\n  tau_ms: -1\n", "smoothing.tau_ms", 2, "a number >= 0", "-1"),
    ("tau_nan", "smoothing: {tau_ms: .nan}\n", "smoothing.tau_ms", 1, "a number >= 0", "nan"),
    ("space", "smoothing: {space: rgb}\n", "smoothing.space", 1, "vad, blendshapes", "'rgb'"),
    ("idle_negative", "smoothing: {idle_timeout_s: -0.5}\n", "smoothing.idle_timeout_s", 1,
     "a number >= 0", "-0.5"),
    ("attack_negative", "smoothing:\n  attack_ms: -5\n", "smoothing.attack_ms", 2,
     "a number >= 0", "-5"),
    ("release_text", "smoothing: {release_ms: slow}\n", "smoothing.release_ms", 1,
     "a number >= 0", "'slow'"),
    ("tau_with_attack", "smoothing:\n  tau_ms: 150\n  attack_ms: 80\n", "smoothing.attack_ms",
     3, "either tau_ms (both directions) or attack_ms and release_ms", "attack_ms with tau_ms"),
    ("tau_with_release", "smoothing: {release_ms: 400, tau_ms: 150}\n", "smoothing.release_ms",
     1, "either tau_ms", "release_ms with tau_ms"),
    ("region_in_vad_space", "smoothing:\n  attack_ms: 90\n  upper: {attack_ms: 50}\n",
     "smoothing.upper", 3, "per-region time constants only with space: blendshapes",
     "upper with space: vad"),
    ("region_unknown_key", "smoothing:\n  space: blendshapes\n  lower: {decay_ms: 5}\n",
     "smoothing.lower.decay_ms", 3, "one of the keys attack_ms, release_ms", "'decay_ms'"),
    ("region_negative", "smoothing:\n  space: blendshapes\n  upper:\n    release_ms: -1\n",
     "smoothing.upper.release_ms", 4, "a number >= 0", "-1"),
    ("region_scalar", "smoothing: {space: blendshapes, lower: 5}\n", "smoothing.lower", 1,
     "a mapping", "5"),
    ("avatar_id_chars", "avatars: {ids: [ok, 'bad id']}\n", "avatars.ids[1]", 1,
     "1-64 characters of A-Za-z0-9_.-", "'bad id'"),
    ("avatar_id_long", f"avatars: {{ids: [{'a' * 65}]}}\n", "avatars.ids[0]", 1,
     "1-64 characters", "'aaaa"),
    ("avatar_id_number", "avatars: {ids: [7]}\n", "avatars.ids[0]", 1, "quote ids", "7"),
    ("avatar_id_duplicate", "avatars:\n  ids:\n    - a\n    - b\n    - a\n", "avatars.ids[2]", 5,
     "each entry once", "first at avatars.ids[0]"),
    ("avatar_ids_over_max", "avatars:\n  max: 1\n  ids: [a, b]\n", "avatars.ids", 3,
     "at most max = 1 ids", "2 ids"),
    ("shard_k_over_n", "avatars: {shard: 3/2}\n", "avatars.shard", 1, "1 <= k <= n", "'3/2'"),
    ("shard_zero", "avatars: {shard: 0/2}\n", "avatars.shard", 1, "1 <= k <= n", "'0/2'"),
    ("shard_text", "avatars: {shard: half}\n", "avatars.shard", 1, "'k/n'", "'half'"),
    ("payload_small", "limits: {max_payload_bytes: 10}\n", "limits.max_payload_bytes", 1,
     "an integer 64..16777216", "10"),
    ("rate_negative", "limits: {rate_limit_per_source: -1}\n", "limits.rate_limit_per_source",
     1, "a number >= 0", "-1"),
    ("inputs_mapping", "inputs: {type: osc}\n", "inputs", 1, "a list of mappings", "a mapping"),
    ("input_scalar", "inputs: [osc]\n", "inputs[0]", 1, "a mapping with a type key", "'osc'"),
    ("input_type_unknown", "inputs:\n  - {type: midi}\n", "inputs[0].type", 2,
     "one of osc, mqtt", "'midi'"),
    ("input_type_missing", "inputs:\n  - {port: 9000}\n", "inputs[0].type", 2,
     "a type key: one of osc, mqtt", "no type key"),
    ("input_port_range", "inputs:\n  - type: osc\n    port: 0\n", "inputs[0].port", 3,
     "an integer 1..65535", "0"),
    ("input_port_string", "inputs:\n  - {type: osc, port: '9000'}\n", "inputs[0].port", 2,
     "an integer 1..65535", "'9000'"),
    ("input_host_empty", "inputs:\n  - {type: osc, host: ''}\n", "inputs[0].host", 2,
     "a host name or IP address", "''"),
    ("input_host_number", "inputs:\n  - {type: mqtt, host: 1}\n", "inputs[0].host", 2,
     "a host name or IP address", "1"),
    ("allow_hosts_name", "inputs:\n  - {type: osc, allow_hosts: [example.com]}\n",
     "inputs[0].allow_hosts[0]", 2, "an IP address or CIDR network", "'example.com'"),
    ("osc_inputs_same_port", "inputs:\n  - {type: osc}\n  - {type: osc, port: 9000}\n",
     "inputs[1].port", 3, "a port not used by OSC input inputs[0]", "127.0.0.1:9000 again"),
    ("topic_plus", "inputs:\n  - {type: mqtt, topic_prefix: a/+}\n", "inputs[0].topic_prefix",
     2, "no wildcards", "'a/+'"),
    ("topic_hash", "inputs:\n  - {type: mqtt, topic_prefix: 'a/#'}\n",
     "inputs[0].topic_prefix", 2, "no wildcards", "'a/#'"),
    ("mqtt_protocol", "inputs:\n  - {type: mqtt, protocol: 3}\n", "inputs[0].protocol", 2,
     "one of 4 (MQTT 3.1.1), 5 (MQTT 5)", "3"),
    ("keepalive_zero", "inputs:\n  - {type: mqtt, keepalive_s: 0}\n", "inputs[0].keepalive_s",
     2, "an integer 1..65535", "0"),
    ("reconnect_zero", "inputs:\n  - {type: mqtt, reconnect_max_s: 0}\n",
     "inputs[0].reconnect_max_s", 2, "a number > 0", "0"),
    ("password_twice",
     "inputs:\n  - type: mqtt\n    username: u\n    password: p\n    password_env: MQTT_PASSWORD\n",
     "inputs[0].password_env", 5, "only one of password and password_env", "both"),
    ("password_env_unset", "inputs:\n  - {type: mqtt, username: u, password_env: NOPE_UNSET}\n",
     "inputs[0].password_env", 2, "environment variable NOPE_UNSET to be set", "unset"),
    ("password_env_name", "inputs:\n  - {type: mqtt, username: u, password_env: 1BAD}\n",
     "inputs[0].password_env", 2, "an environment variable name",
     "not a valid environment variable name (the value is not shown"),
    ("password_without_user", "inputs:\n  - {type: mqtt, password: p}\n",
     "inputs[0].password", 2, "username to be set", "no username"),
    ("tls_scalar", "inputs:\n  - {type: mqtt, tls: yes}\n", "inputs[0].tls", 2, "a mapping",
     "'yes'"),
    ("tls_missing_ca", "inputs:\n  - type: mqtt\n    tls:\n      ca_file: nope/ca.pem\n",
     "inputs[0].tls.ca_file", 4, "an existing CA certificate (PEM) file", "nope/ca.pem"),
    ("tls_key_without_cert", "inputs:\n  - type: mqtt\n    tls:\n      key_file: x.yaml\n",
     "inputs[0].tls.key_file", 4, "cert_file to be set when key_file is", "no cert_file"),
    ("output_type_unknown", "outputs:\n  - {type: vmc}\n  - {type: ndi}\n", "outputs[1].type", 3,
     "one of vmc, osc, livelink", "'ndi'"),
    ("output_unknown_key", "outputs:\n  - type: vmc\n    prot: 1\n", "outputs[0].prot", 3,
     "one of the keys arkit, avatar, bundle, host, naming, port, send_ok_and_time, split, type, "
     "vrm_presets",
     "did you mean 'port'"),
    ("output_port_high", "outputs:\n  - {type: vmc}\n  - type: osc\n    port: 70000\n",
     "outputs[1].port", 4, "an integer 1..65535", "70000"),
    ("output_avatar", "outputs:\n  - {type: vmc, avatar: 'a/b'}\n", "outputs[0].avatar", 2,
     "an avatar id", "'a/b'"),
    ("vmc_naming", "outputs:\n  - {type: vmc, naming: camel}\n", "outputs[0].naming", 2,
     "one of perfect_sync, arkit", "'camel'"),
    ("vmc_bundle_type", "outputs:\n  - {type: vmc, bundle: 1}\n", "outputs[0].bundle", 2,
     "true or false", "1"),
    ("vmc_split_unbundled", "outputs:\n  - type: vmc\n    bundle: false\n    split: true\n",
     "outputs[0].split", 4, "split: false when bundle is false", "split: true"),
    ("osc_mode", "outputs:\n  - {type: osc, mode: vector}\n", "outputs[0].mode", 2,
     "one of per_shape, array", "'vector'"),
    ("osc_prefix_slash", "outputs:\n  - {type: osc, prefix: blendshape}\n", "outputs[0].prefix",
     2, "starts with '/'", "'blendshape'"),
    ("osc_prefix_space", "outputs:\n  - {type: osc, prefix: /blend shape}\n",
     "outputs[0].prefix", 2, "without spaces", "'/blend shape'"),
    ("osc_prefix_pattern", "outputs:\n  - {type: osc, prefix: '/blend*'}\n", "outputs[0].prefix",
     2, "#*,?[]{}", "'/blend*'"),
    ("osc_prefix_trailing", "outputs:\n  - {type: osc, prefix: /blend/}\n", "outputs[0].prefix",
     2, "no trailing '/'", "'/blend/'"),
    ("livelink_subject_empty", "outputs:\n  - {type: livelink, subject: ''}\n",
     "outputs[0].subject", 2, "at most 255 UTF-8 bytes", "''"),
    ("livelink_subject_long", f"outputs:\n  - {{type: livelink, subject: {'é' * 128}}}\n",
     "outputs[0].subject", 2, "at most 255 UTF-8 bytes", "'éééé"),
    ("livelink_device_id_short", "outputs:\n  - {type: livelink, device_id: vadbridge}\n",
     "outputs[0].device_id", 2, "exactly 36 printable ASCII characters", "'vadbridge'"),
    ("livelink_device_id_non_ascii", f"outputs:\n  - {{type: livelink, device_id: {'é' * 36}}}\n",
     "outputs[0].device_id", 2, "read exactly 36 bytes", "'éééé"),
    ("checkpoint_suffix", "model: {checkpoint: x.yaml}\n", "model.checkpoint", 1,
     "(.npz or .pt)", "x.yaml"),
    ("yaml_syntax", "frame_rate: 60\nmodel: {engine: mlp\n", "", 3, "valid YAML", ""),
    ("yaml_tab", "frame_rate: 60\n\tlog_level: info\n", "", 2, "valid YAML", ""),
    ("two_documents", "frame_rate: 60\n---\nframe_rate: 30\n", "", 2, "valid YAML",
     "single document"),
    ("tagged_garbage", "frame_rate: !!timestamp never\n", "frame_rate", 1, "an integer 1..240",
     "unreadable"),
    ("python_tag", "frame_rate: !!python/object:os.system echo\n", "frame_rate", 1,
     "an integer 1..240", "unreadable"),
    ("huge_int", f"frame_rate: 0x{'f' * 600}\n", "frame_rate", 1, "an integer 1..240",
     "an integer of 2400 bits"),
]


@pytest.mark.parametrize(
    ("text", "key_path", "line", "expected", "got"),
    [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_config_is_one_error_naming_file_line_key_and_expectation(
        tmp_path: Path, text: str, key_path: str, line: int, expected: str, got: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=ENV)
    error = caught.value
    assert (error.file, error.key_path, error.line) == (str(path), key_path, line)
    assert expected in error.expected
    assert got in error.got
    key_part = f" {key_path}:" if key_path else ""
    assert str(error) == f"{path}:{line}:{key_part} expected {error.expected}, got {error.got}"
    assert "\n" not in str(error)


def test_error_message_has_the_documented_shape(tmp_path: Path) -> None:
    text = "outputs:\n  - {type: vmc}\n" + "\n" * 8 + "  - {type: osc, port: 70000}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:11: outputs[1].port: expected an integer 1..65535, got 70000")
    assert format_config_error(caught.value) == f"vadbridge: invalid config: {caught.value}"


def test_missing_checkpoint_error_names_the_resolved_path(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  checkpoint: weights/mine.npz\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key_path == "model.checkpoint"
    assert caught.value.line == 2
    assert str(tmp_path / "weights" / "mine.npz") in caught.value.got
    assert "no such file" in caught.value.got


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "mine.npz").write_bytes(b"")
    (tmp_path / "ca.pem").write_text("x")
    path = write(tmp_path, "model: {checkpoint: weights/mine.npz}\n"
                           "inputs:\n  - {type: mqtt, tls: {ca_file: ca.pem}}\n")
    config = load_config(path)
    assert config.model.checkpoint == str(tmp_path / "weights" / "mine.npz")
    source = config.inputs[0]
    assert isinstance(source, MqttInputConfig) and source.tls is not None
    assert source.tls.ca_file == str(tmp_path / "ca.pem")
    assert (source.tls.cert_file, source.tls.key_file) == (None, None)


def test_an_unknown_key_with_a_newline_still_gives_a_one_line_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('"bad\\nkey": 1\n', "s.yaml")
    assert "\n" not in str(caught.value)
    assert caught.value.key_path == "'bad\\nkey'"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.file == str(tmp_path / "nope.yaml")
    assert caught.value.expected == "a readable config file"
    assert caught.value.got == "No such file or directory"


def test_a_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"log_level: \xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.expected == "UTF-8 text"
    assert "offset 11" in caught.value.got


def test_a_record_path_resolves_relative_to_the_config_and_needs_its_directory(
        tmp_path: Path) -> None:
    source = str(tmp_path / "x.yaml")
    (output,) = parse_config("outputs:\n  - {type: record, path: take.csv}\n", source).outputs
    assert output == RecordOutputConfig(path=str(tmp_path / "take.csv"))
    with pytest.raises(ConfigError) as caught:
        parse_config("outputs:\n  - {type: record, path: no/such/dir/take.csv}\n", source)
    assert caught.value.key_path == "outputs[0].path"
    assert caught.value.got == repr(str(tmp_path / "no" / "such" / "dir" / "take.csv"))
    with pytest.raises(ConfigError):
        parse_config("outputs:\n  - {type: record, path: .}\n", source)  # a directory


# ---------------------------------------------------------------- what valid configs mean


def test_null_sections_are_defaults_and_null_lists_are_empty() -> None:
    config = parse_config("model:\nsmoothing: ~\ninputs:\noutputs: []\navatars: {ids:}\n")
    assert config.model == ModelConfig()
    assert config.inputs == () and config.outputs == ()
    assert config.avatars.ids == ()


def test_absent_lists_are_the_defaults_but_other_keys_still_apply() -> None:
    config = parse_config("frame_rate: 30\nsmoothing: {tau_ms: 0}\n")
    assert config.inputs == BridgeConfig().inputs
    assert config.frame_rate == 30 and config.frame_period_s == pytest.approx(1 / 30)
    assert config.smoothing.tau_ms == 0.0 and isinstance(config.smoothing.tau_ms, float)


def test_every_output_type_reads_all_its_keys() -> None:
    config = parse_config(
        "outputs:\n"
        "  - {type: vmc, host: 10.0.0.2, port: 39540, avatar: bob, naming: arkit, bundle: true,"
        " split: true, send_ok_and_time: false}\n"
        "  - {type: osc, host: '::1', port: 3333, avatar: a.b-c_1, mode: array, prefix: /face/bs,"
        " naming: perfect_sync}\n"
        "  - {type: livelink, subject: iPhoneXFaceAR,"
        " device_id: 6F9619FF-8B86-D011-B42D-00C04FC964FF}\n")
    assert config.outputs == (
        VmcOutputConfig(host="10.0.0.2", port=39540, avatar="bob", naming="arkit", split=True,
                        send_ok_and_time=False),
        OscOutputConfig(host="::1", port=3333, avatar="a.b-c_1", mode="array",
                        prefix="/face/bs", naming="perfect_sync"),
        LiveLinkOutputConfig(subject="iPhoneXFaceAR",
                             device_id="6F9619FF-8B86-D011-B42D-00C04FC964FF"),
    )
    assert [output.type for output in config.outputs] == ["vmc", "osc", "livelink"]


def test_osc_allow_hosts_accepts_addresses_and_networks() -> None:
    config = parse_config(
        "inputs:\n  - {type: osc, allow_hosts: [192.168.1.20, 10.0.0.0/8, '::1']}\n")
    source = config.inputs[0]
    assert isinstance(source, OscInputConfig)
    assert [str(n) for n in source.allowed_networks] == ["192.168.1.20/32", "10.0.0.0/8", "::1/128"]


def test_config_objects_are_frozen() -> None:
    config = BridgeConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.frame_rate = 30  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.outputs[0].port = 1  # type: ignore[misc]


@pytest.mark.parametrize("how", ["password", "password_env"])
def test_the_password_never_appears_in_repr(how: str) -> None:
    secret = "hunter2-very-secret"
    line = f"password: {secret}" if how == "password" else "password_env: BRIDGE_PW"
    config = parse_config(f"inputs:\n  - type: mqtt\n    username: me\n    {line}\n",
                          environ={"BRIDGE_PW": secret})
    source = config.inputs[0]
    assert isinstance(source, MqttInputConfig)
    assert source.password == secret
    assert secret not in repr(config) and secret not in str(config)
    assert secret not in repr(source)
    assert "username='me'" in repr(source)


# ---------------------------------------------------------------- sharding


def test_shards_partition_avatar_ids_exactly() -> None:
    ids = [f"avatar{i}" for i in range(500)]
    owners = {avatar: [k for k in range(1, 5) if Shard(k, 4).owns(avatar)] for avatar in ids}
    assert all(len(found) == 1 for found in owners.values())
    counts = [sum(1 for found in owners.values() if found == [k]) for k in range(1, 5)]
    assert min(counts) > 75  # a usable spread (500/4 = 125 each on average)


def test_shard_owns_a_stable_set_known_in_advance() -> None:
    # CRC-32 is the contract between instances: these values must never change.
    assert [Shard(k, 2).owns("default") for k in (1, 2)] == [False, True]
    assert [Shard(k, 3).owns("bob") for k in (1, 2, 3)] == [False, False, True]


def test_sharded_avatars_keep_only_their_own_ids() -> None:
    ids = ", ".join(f"a{i}" for i in range(20))
    halves = [parse_config(f"avatars: {{ids: [{ids}], shard: '{k}/2'}}\n").avatars
              for k in (1, 2)]
    assert halves[0].shard == Shard(1, 2)
    owned = [set(half.owned_ids) for half in halves]
    assert owned[0].isdisjoint(owned[1])
    assert owned[0] | owned[1] == {f"a{i}" for i in range(20)}
    assert all(halves[0].owns(avatar) for avatar in owned[0])
    assert parse_config("avatars: {ids: [x, y]}").avatars.owned_ids == ("x", "y")


# ---------------------------------------------------------------- command-line overrides


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("localhost:1", ("localhost", 1)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ("[::1]:9000", ("::1", 9000)),
    ("[fe80::1%eth0]:39539", ("fe80::1%eth0", 39539)),
])
def test_parse_host_port_reads_hosts_and_bracketed_ipv6(
        text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text, "--osc-in") == expected


@pytest.mark.parametrize("text", ["9000", "host:", ":9000", "host:0", "host:65536", "h:x",
                                  "::1:9000", "[::1]", "a b:1", "host:-1", ""])
def test_parse_host_port_rejects_bad_addresses_naming_the_flag(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_host_port(text, "--vmc-out")
    assert caught.value.key_path == "--vmc-out"
    assert caught.value.line is None
    assert str(caught.value).startswith("<command line>: --vmc-out: expected HOST:PORT")


def test_overrides_change_the_first_input_and_output_of_their_type() -> None:
    base = parse_config("inputs:\n  - {type: osc, port: 1}\n  - {type: osc, port: 2}\n"
                        "  - {type: mqtt}\noutputs:\n  - {type: osc}\n  - {type: vmc, avatar: b}\n")
    config = apply_overrides(base, fps=120, osc_in="0.0.0.0:9100", mqtt="[::1]:1884",
                             vmc_out="192.168.1.5:39540")
    assert config.frame_rate == 120
    assert config.inputs == (OscInputConfig(host="0.0.0.0", port=9100), OscInputConfig(port=2),
                             MqttInputConfig(host="::1", port=1884))
    assert config.outputs == (OscOutputConfig(),
                              VmcOutputConfig(host="192.168.1.5", port=39540, avatar="b"))
    assert base.frame_rate == 60  # the original is untouched


def test_overrides_add_an_input_or_output_when_there_is_none() -> None:
    base = parse_config("inputs: []\noutputs: []\n")
    config = apply_overrides(base, osc_in=("127.0.0.1", 9000), mqtt="127.0.0.1:1883",
                             vmc_out="127.0.0.1:39539")
    assert config.inputs == (OscInputConfig(), MqttInputConfig())
    assert config.outputs == (VmcOutputConfig(),)
    assert apply_overrides(base) == base


@pytest.mark.parametrize(("kwargs", "flag"), [
    ({"fps": 0}, "--fps"), ({"fps": 241}, "--fps"), ({"osc_in": "nope"}, "--osc-in"),
    ({"mqtt": "h:99999"}, "--mqtt"), ({"vmc_out": ("", 1)}, "--vmc-out"),
])
def test_bad_overrides_raise_config_errors_naming_the_flag(kwargs: dict[str, object],
                                                           flag: str) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(BridgeConfig(), **kwargs)  # type: ignore[arg-type]
    assert caught.value.key_path == flag


# ---------------------------------------------------------------- facts other layers share


def test_the_port_key_and_the_address_flags_accept_exactly_the_port_range() -> None:
    low, high = PORT_RANGE
    for port in (low, high):
        assert parse_config(f"inputs:\n  - {{type: osc, port: {port}}}\n").inputs[0].port == port
        assert parse_host_port(f"host:{port}") == ("host", port)
        assert is_port(port)
    for port in (low - 1, high + 1):
        with pytest.raises(ConfigError):
            parse_config(f"inputs:\n  - {{type: osc, port: {port}}}\n")
        with pytest.raises(ConfigError):
            parse_host_port(f"host:{port}")
        assert not is_port(port)
    assert not is_port(True) and not is_port(float(low))


def test_the_frame_rate_key_and_the_fps_flag_accept_exactly_the_frame_rate_range() -> None:
    low, high = FRAME_RATE_RANGE
    for fps in (low, high):
        assert parse_config(f"frame_rate: {fps}\n").frame_rate == fps
        assert apply_overrides(BridgeConfig(), fps=fps).frame_rate == fps
    for fps in (low - 1, high + 1):
        with pytest.raises(ConfigError):
            parse_config(f"frame_rate: {fps}\n")
        with pytest.raises(ConfigError):
            apply_overrides(BridgeConfig(), fps=fps)


@pytest.mark.parametrize("avatar", ["a", "Npc_1.b-2", "a" * 64, "a" * 65, "bad id", "é", "a/b"])
def test_the_avatar_id_pattern_is_the_rule_the_config_applies(avatar: str) -> None:
    try:
        parse_config(f"avatars: {{ids: ['{avatar}']}}\n")
    except ConfigError:
        accepted = False
    else:
        accepted = True
    assert accepted == (AVATAR_ID_PATTERN.fullmatch(avatar) is not None)


def test_the_first_reconnect_delay_is_half_a_second_unless_the_cap_is_lower() -> None:
    assert MqttInputConfig().reconnect_initial_s == 0.5
    assert MqttOutputConfig(reconnect_max_s=0.2).reconnect_initial_s == 0.2


def test_smoothing_gives_tau_in_seconds_and_the_space_as_read() -> None:
    smoothing = parse_config("smoothing: {tau_ms: 250, space: blendshapes}\n").smoothing
    assert (smoothing.attack_s, smoothing.release_s) == (0.25, 0.25)
    assert smoothing.space == "blendshapes"


def test_smoothing_defaults_rise_faster_than_they_fall() -> None:
    smoothing = BridgeConfig().smoothing
    assert (smoothing.attack_ms, smoothing.release_ms, smoothing.tau_ms) == (120.0, 300.0, None)
    assert smoothing.attack_s < smoothing.release_s
    assert smoothing.upper_s is None and smoothing.lower_s is None


def test_attack_and_release_are_read_in_milliseconds_and_given_in_seconds() -> None:
    smoothing = parse_config("smoothing: {attack_ms: 80, release_ms: 0}\n").smoothing
    assert (smoothing.attack_s, smoothing.release_s) == (0.08, 0.0)


def test_one_of_attack_and_release_keeps_the_default_of_the_other() -> None:
    smoothing = parse_config("smoothing: {release_ms: 500}\n").smoothing
    assert (smoothing.attack_s, smoothing.release_s) == (0.12, 0.5)


def test_a_region_falls_back_to_the_whole_face_key_by_key() -> None:
    smoothing = parse_config(
        "smoothing:\n  space: blendshapes\n  attack_ms: 100\n  release_ms: 400\n"
        "  upper: {attack_ms: 60}\n  lower: {release_ms: 250}\n").smoothing
    assert smoothing.upper_s == (0.06, 0.4)
    assert smoothing.lower_s == (0.1, 0.25)


def test_regions_follow_tau_ms_where_they_give_no_key() -> None:
    smoothing = parse_config(
        "smoothing: {tau_ms: 200, space: blendshapes, upper: {release_ms: 500}}\n").smoothing
    assert smoothing.upper_s == (0.2, 0.5)
    assert (smoothing.attack_s, smoothing.release_s) == (0.2, 0.2)


def test_tau_ms_null_lets_attack_and_release_apply() -> None:
    smoothing = parse_config("smoothing: {tau_ms: null, attack_ms: 50}\n").smoothing
    assert (smoothing.attack_s, smoothing.release_s) == (0.05, 0.3)


# ---------------------------------------------------------------- the generated reference


def test_committed_configuration_reference_matches_the_schema() -> None:
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    hint = "regenerate: python -m vadbridge.config --markdown > docs/configuration.md"
    assert committed == render_markdown(), hint


def _documented_keys(cls: type, prefix: str) -> list[str]:
    """Every key below ``cls``, found from its type hints alone: a field typed with a
    ``...Config`` class (optional or not) is a section; a tuple of them is a typed list."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        is_list = typing.get_origin(hint) is tuple
        item = typing.get_args(hint)[0] if is_list else hint
        kinds = typing.get_args(item) or (item,)  # the members of a union
        sections = [kind for kind in kinds
                    if isinstance(kind, type) and kind.__name__.endswith("Config")]
        for section in sections:
            keys += _documented_keys(section, f"{prefix}{f.name}{'[]' if is_list else ''}.")
        if not sections:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_reference_documents_every_key_with_its_default() -> None:
    text = render_markdown()
    keys = _documented_keys(BridgeConfig, "")
    assert len(keys) > 40
    for key in keys:
        assert f"| `{key}` |" in text, key
    assert "| `inputs[].tls.key_file` |" in text
    assert "| `smoothing.attack_ms` | a number >= 0 | `120` |" in text
    assert "| `smoothing.tau_ms` | a number >= 0 or null | `null` |" in text
    assert "| `smoothing.upper.release_ms` | a number >= 0 or null | `null` |" in text


def run_config_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vadbridge.config", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_module_prints_the_reference() -> None:
    done = run_config_module("--markdown")
    assert (done.returncode, done.stdout) == (0, render_markdown())


def test_the_module_validates_a_file(tmp_path: Path) -> None:
    good = run_config_module(str(write(tmp_path, "frame_rate: 30\n")))
    assert (good.returncode, good.stdout) == (0, f"{tmp_path / 'x.yaml'}: ok\n")
    bad = run_config_module(str(write(tmp_path, "frame_rate: 300\n", "bad.yaml")))
    assert bad.returncode == 2
    assert bad.stderr == f"vadbridge: invalid config: {tmp_path / 'bad.yaml'}:1: frame_rate: " \
                         "expected an integer 1..240, got 300\n"


# ---------------------------------------------------------------- fuzzing: only ConfigError


def _parse_or_config_error(text: str) -> None:
    try:
        config = parse_config(text, "fuzz.yaml", environ={})
    except ConfigError as error:
        assert "\n" not in str(error)
        assert error.file == "fuzz.yaml"
    else:
        assert isinstance(config, BridgeConfig)


YAML_BITS = st.sampled_from([
    "frame_rate", "inputs", "outputs", "type", "osc", "vmc", "mqtt", "livelink", "port", "host",
    ":", ": ", "- ", "\n", "  ", "{", "}", "[", "]", ",", "'", '"', "&a ", "*a", "!!int ",
    "!!timestamp ", "!!binary ", "? ", "<<: ", "~", "null", "true", "1e999", ".nan", "0x",
    "70000", "-1", "#", "---\n", "...\n", "%YAML 1.1\n", "|\n", ">\n", "\t", "\\", "é", "\x00",
])


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_BITS, max_size=40).map("".join))
def test_fuzz_yaml_like_text_raises_only_config_error(text: str) -> None:
    _parse_or_config_error(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text_raises_only_config_error(text: str) -> None:
    _parse_or_config_error(text)


_KEYS = st.sampled_from([
    "frame_rate", "stats_interval_s", "log_level", "model", "smoothing", "avatars", "limits",
    "inputs", "outputs", "type", "host", "port", "checkpoint", "ids", "shard", "tls", "ca_file",
    "password", "password_env", "username", "prefix", "mode", "subject", "split", "bundle",
    "tau_ms", "space", "max", "allow_hosts", "topic_prefix", "protocol", "unknown",
])
_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=True, allow_infinity=True)
            | st.sampled_from(["osc", "vmc", "mqtt", "livelink", "1/2", "/x", "default", "vad"])
            | st.text(max_size=20))
_STRUCTURES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _STRUCTURES, max_size=6))
def test_fuzz_random_structures_raise_only_config_error(document: dict[str, object]) -> None:
    _parse_or_config_error(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_fuzz_one_wrong_value_in_the_default_config_is_a_config_error(data: st.DataObject) -> None:
    document = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text(encoding="utf-8"))
    node = document
    while True:
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict)
                                        else list(range(len(node)))))
        child = node[key]
        if not isinstance(child, dict | list) or not child or data.draw(st.booleans()):
            node[key] = data.draw(_STRUCTURES)
            break
        node = child
    _parse_or_config_error(yaml.safe_dump(document, allow_unicode=True))
