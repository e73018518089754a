"""The config schema: one frozen dataclass per section and per input/output type.

Each field's metadata holds its spec and its documentation line (see ``config_types.setting``);
``bridge.config`` reads YAML into these classes and renders docs/configuration.md from them.
A new input or output is one dataclass with a ``type`` ClassVar plus one line in its registry
(and the ``InputConfig``/``OutputConfig`` unions). Wire facts cited below are from
../shared/reference/protocols.md.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from bridge.config_types import (
    Bool,
    Choice,
    Context,
    FilePath,
    Int,
    Invalid,
    IpNetworkText,
    ListOf,
    NewFilePath,
    Number,
    Optional,
    Section,
    Shard,
    ShardText,
    Text,
    TypedList,
    setting,
)

_AVATAR_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OSC_FORBIDDEN = set(" #*,?[]{}")


def _is_host(text: str) -> bool:
    return bool(text) and len(text) <= 253 and text.isprintable() and " " not in text


def _is_osc_prefix(text: str) -> bool:
    return (
        len(text) >= 2
        and text.startswith("/")
        and not text.endswith("/")
        and "//" not in text
        and text.isascii()
        and text.isprintable()
        and not _OSC_FORBIDDEN.intersection(text)
    )


def _utf8_at_most(limit: int) -> Any:
    return lambda text: 0 < len(text.encode("utf-8", "surrogatepass")) <= limit


def _is_publish_topic(text: str) -> bool:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate from a YAML escape
        return False
    # 64 bytes of room for the avatar id that replaces <avatar>.
    return (0 < size <= 65535 - 64 and "+" not in text and "#" not in text and "\0" not in text
            and not text.startswith("$"))


def _is_topic_prefix(text: str) -> bool:
    return (
        bool(text)
        and "+" not in text
        and "#" not in text
        and "\0" not in text
        and not text.startswith("$")
        and not text.endswith("/")
        and len(text.encode("utf-8", "surrogatepass")) <= 1024
    )


AVATAR_ID = Text(
    "an avatar id: 1-64 characters of A-Za-z0-9_.- (quote ids that YAML reads as numbers)",
    lambda text: _AVATAR_ID.fullmatch(text) is not None,
)
HOST = Text("a host name or IP address (non-empty, no spaces)", _is_host)
PORT = Int(1, 65535)
OSC_PREFIX = Text(
    "an OSC address: starts with '/', no trailing '/' or '//', printable ASCII without spaces "
    "or any of #*,?[]{}",
    _is_osc_prefix,
)
LABEL_255 = Text("a non-empty string of at most 255 UTF-8 bytes", _utf8_at_most(255))
MQTT_STRING = Text("a non-empty string of at most 65535 UTF-8 bytes", _utf8_at_most(65535))
TOPIC_PREFIX = Text(
    "an MQTT topic prefix: non-empty, no wildcards '+' or '#', not starting with '$' or "
    "ending with '/'",
    _is_topic_prefix,
)
ENV_NAME = Text(
    "an environment variable name (letters, digits and _, not starting with a digit)",
    lambda text: _ENV_NAME.fullmatch(text) is not None,
)
SECRET = Text("a string", lambda text: True)
PUBLISH_TOPIC = Text(
    "an MQTT topic: non-empty, no wildcards '+' or '#', not starting with '$'; `<avatar>` "
    "stands for the avatar id",
    _is_publish_topic,
)
AVATAR_DOC = "The avatar whose frames this output sends (see `avatars`)."


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class OscInputConfig:
    """OSC over UDP: `/vad`, `/vad/valence` (arousal, dominance), `/emotion`, `/avatar/<id>/…`."""

    type: ClassVar[str] = "osc"
    host: str = setting(
        "127.0.0.1", HOST,
        "Address to listen on. 127.0.0.1 accepts only this machine; 0.0.0.0 or a LAN address "
        "accepts others (the daemon logs a warning).")
    port: int = setting(9000, PORT, "UDP port to listen on.")
    allow_hosts: tuple[str, ...] = setting(
        (), ListOf(IpNetworkText()),
        "Accept datagrams only from these source addresses or networks; empty = from anyone.")

    @property
    def allowed_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.allow_hosts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """TLS for the MQTT connection. An empty mapping (`tls: {}`) = TLS with the system CAs."""

    ca_file: str | None = setting(
        None, Optional(FilePath("CA certificate (PEM)")),
        "CA bundle that signed the broker's certificate; null = the system's CAs.")
    cert_file: str | None = setting(
        None, Optional(FilePath("client certificate (PEM)")),
        "Client certificate, for brokers that require one; may also hold the key.")
    key_file: str | None = setting(
        None, Optional(FilePath("client private key (PEM)")),
        "Private key of cert_file, when it is a separate file.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if values.get("key_file") is not None and values.get("cert_file") is None:
            raise Invalid("cert_file to be set when key_file is", "no cert_file", ("key_file",))


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttInputConfig:
    """MQTT subscriber: `<topic_prefix>/<avatar>/vad` and `<topic_prefix>/<avatar>/emotion`."""

    type: ClassVar[str] = "mqtt"
    host: str = setting("127.0.0.1", HOST, "Broker host name or address.")
    port: int = setting(1883, PORT, "Broker port (1883 plain, usually 8883 with TLS).")
    topic_prefix: str = setting(
        "vadbridge", TOPIC_PREFIX,
        "Subscribes `<prefix>/+/vad` and `<prefix>/+/emotion`; the `+` level is the avatar id "
        "(only this instance's avatars when `avatars.shard` is set with explicit ids).")
    protocol: int = setting(
        5, Choice(4, 5, notes={4: "MQTT 3.1.1", 5: "MQTT 5"}), "MQTT protocol version.")
    client_id: str | None = setting(
        None, Optional(MQTT_STRING),
        "MQTT client identifier; null = a random one. Must differ between bridge instances.")
    username: str | None = setting(None, Optional(MQTT_STRING), "Broker user name; null = none.")
    password: str | None = setting(
        None, Optional(SECRET),
        "Broker password (needs `username`). Prefer `password_env`; never logged.", repr=False)
    password_env: str | None = setting(
        None, Optional(ENV_NAME),
        "Read the password from this environment variable at load; unset variable = error.")
    tls: TlsConfig | None = setting(  # noqa: RUF009 (setting() is our dataclasses.field)
        None, Optional(Section(TlsConfig)), "TLS settings; null = plain TCP.")
    keepalive_s: int = setting(
        30, Int(1, 65535), "MQTT keep-alive interval; a dead broker is noticed within ~1.5x.")
    reconnect_max_s: float = setting(
        5.0, Number(0.0, low_open=True),
        "Cap of the jittered exponential reconnect backoff. The daemon keeps streaming while "
        "the broker is away.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        _take_password(values, ctx)


def _take_password(values: dict[str, Any], ctx: Context) -> None:
    """MQTT credentials (input and output): ``password_env`` read into ``password``, checked."""
    env_name = values.get("password_env")
    if env_name is not None:
        if values.get("password") is not None:
            raise Invalid("only one of password and password_env", "both", ("password_env",))
        if env_name not in ctx.environ:
            raise Invalid(f"environment variable {env_name} to be set", "unset",
                          ("password_env",))
        values["password"] = ctx.environ[env_name]
    if values.get("password") is not None and values.get("username") is None:
        # paho only sends a password along with a user name: it would be dropped silently.
        where = "password_env" if env_name is not None else "password"
        raise Invalid("username to be set when a password is", "no username", (where,))


InputConfig = OscInputConfig | MqttInputConfig
INPUT_TYPES: dict[str, Any] = {cls.type: cls for cls in (OscInputConfig, MqttInputConfig)}


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class VmcOutputConfig:
    """VMC (VSeeFace, VNyan, Warudo, EVMC4U): 52 `/VMC/Ext/Blend/Val s f` + Apply per frame."""

    type: ClassVar[str] = "vmc"
    host: str = setting("127.0.0.1", HOST, "Receiver host.")
    port: int = setting(39539, PORT, "Receiver port (a VMC Marionette such as VSeeFace: 39539).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    naming: str = setting(
        "perfect_sync", Choice("perfect_sync", "arkit"),
        "Blendshape names: perfect_sync = UpperCamelCase (EyeBlinkLeft, what VSeeFace perfect "
        "sync models use); arkit = Apple's lowerCamelCase (eyeBlinkLeft).")
    bundle: bool = setting(
        True, Bool(), "One OSC bundle per frame; false = separate datagrams (VNyan's 'don't "
        "bundle').")
    split: bool = setting(
        False, Bool(),
        "Split the frame into two bundles with Apply in the last, each under a 1,500-byte MTU "
        "(the full frame is 2,572 bytes and gets IP-fragmented on a LAN). Needs bundle: true.")
    send_ok_and_time: bool = setting(
        True, Bool(), "Also send `/VMC/Ext/OK 1` and `/VMC/Ext/T <seconds since start>` per frame.")
    arkit: bool = setting(True, Bool(), "Send the 52 ARKit (perfect sync) shapes.")
    vrm_presets: str = setting(
        "none", Choice("none", "vrm0", "vrm1"),
        "Also send VRM expression presets derived from the avatar's VAD, for models without "
        "perfect sync: vrm0 = Joy, Angry, Sorrow, Fun, Surprised (VRoid's custom clip); vrm1 = "
        "happy, angry, sad, relaxed, surprised. Same Val messages, before the one Apply.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if values.get("split") and values.get("bundle") is False:
            raise Invalid("split: false when bundle is false", "split: true", ("split",))
        if values.get("arkit") is False and values.get("vrm_presets", "none") == "none":
            raise Invalid("vrm_presets vrm0 or vrm1 when arkit is false (nothing to send)",
                          "vrm_presets: none", ("arkit",))


@dataclass(frozen=True, slots=True, kw_only=True)
class OscOutputConfig:
    """Generic OSC for Unity/Unreal OSC plugins (no standard address; pick what the app reads)."""

    type: ClassVar[str] = "osc"
    host: str = setting("127.0.0.1", HOST, "Receiver host.")
    port: int = setting(9001, PORT, "Receiver port (Unity's uOSC listens on 3333 by default).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    mode: str = setting(
        "per_shape", Choice("per_shape", "array"),
        "per_shape = `<prefix>/<Name> f` for each of the 52 shapes in one bundle per frame; "
        "array = one message `<prefix>` with the 52 floats in the model's ARKit order.")
    prefix: str = setting("/blendshape", OSC_PREFIX, "OSC address prefix (see mode).")
    naming: str = setting(
        "arkit", Choice("arkit", "perfect_sync"),
        "Shape names in addresses: arkit = eyeBlinkLeft, perfect_sync = EyeBlinkLeft.")


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveLinkOutputConfig:
    """Live Link Face packets (version 6) for Unreal's Live Link, one datagram per frame."""

    type: ClassVar[str] = "livelink"
    host: str = setting("127.0.0.1", HOST, "Host running Unreal.")
    port: int = setting(11111, PORT, "Live Link Face port (Unreal's default: 11111).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    subject: str = setting(
        "vadbridge", LABEL_255,
        "Subject name shown in Unreal's Live Link window (the app's default is iPhoneXFaceAR).")
    device_id: str = setting("vadbridge", LABEL_255, "Device id sent in every packet.")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOutputConfig:
    """Recording: every frame as a row of a Live Link Face CSV (Unreal, Blender, Maya importers)."""

    type: ClassVar[str] = "record"
    path: str = setting(
        "take.csv", NewFilePath("recording"),
        "CSV file to write, created or truncated at start (default: take.csv beside the config "
        "file).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if "path" not in values:
            values["path"] = NewFilePath("recording").check("take.csv", ctx)


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttOutputConfig:
    """MQTT publisher: `{"t": s, "frame": n, "blendshapes": {name: value}}` (JSON, QoS 0)."""

    type: ClassVar[str] = "mqtt"
    host: str = setting("127.0.0.1", HOST, "Broker host name or address.")
    port: int = setting(1883, PORT, "Broker port (1883 plain, usually 8883 with TLS).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    topic: str = setting("vadbridge/<avatar>/blendshapes", PUBLISH_TOPIC, "Topic to publish to.")
    rate_hz: float = setting(
        30.0, Number(0.1, 1000.0),
        "Most messages per second; frames in between are coalesced (the newest is sent).")
    protocol: int = setting(
        5, Choice(4, 5, notes={4: "MQTT 3.1.1", 5: "MQTT 5"}), "MQTT protocol version.")
    client_id: str | None = setting(
        None, Optional(MQTT_STRING),
        "MQTT client identifier; null = a random one. Must differ from every other client's.")
    username: str | None = setting(None, Optional(MQTT_STRING), "Broker user name; null = none.")
    password: str | None = setting(
        None, Optional(SECRET),
        "Broker password (needs `username`). Prefer `password_env`; never logged.", repr=False)
    password_env: str | None = setting(
        None, Optional(ENV_NAME),
        "Read the password from this environment variable at load; unset variable = error.")
    tls: TlsConfig | None = setting(  # noqa: RUF009
        None, Optional(Section(TlsConfig)), "TLS settings; null = plain TCP.")
    keepalive_s: int = setting(30, Int(1, 65535), "MQTT keep-alive interval.")
    reconnect_max_s: float = setting(
        5.0, Number(0.0, low_open=True),
        "Cap of the jittered exponential reconnect backoff; frames meanwhile are dropped.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        _take_password(values, ctx)


OutputConfig = (VmcOutputConfig | OscOutputConfig | LiveLinkOutputConfig | RecordOutputConfig
                | MqttOutputConfig)
OUTPUT_TYPES: dict[str, Any] = {
    cls.type: cls for cls in (VmcOutputConfig, OscOutputConfig, LiveLinkOutputConfig,
                              RecordOutputConfig, MqttOutputConfig)
}


# ---------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    checkpoint: str = setting(
        "default", FilePath("checkpoint", default_word="default", suffixes=(".npz", ".pt")),
        "`default` = the bundled model; otherwise a checkpoint path (stored resolved). `.pt` "
        "files need torch.")
    symmetry: bool = setting(True, Bool(), "Make left/right shapes exactly equal every frame.")
    engine: str = setting(
        "mlp", Choice("mlp", "lut"),
        "mlp = the network's forward pass; lut = a baked VAD grid with trilinear interpolation.")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmoothingConfig:
    tau_ms: float = setting(
        150.0, Number(0.0),
        "Time constant of the exponential smoothing (alpha = 1 - exp(-dt/tau)), the same at "
        "any frame rate; 0 = none.")
    space: str = setting(
        "vad", Choice("vad", "blendshapes"),
        "vad = smooth the VAD state (the face passes through intermediate emotions); "
        "blendshapes = smooth the 52 weights.")
    idle_timeout_s: float = setting(
        0.0, Number(0.0), "After this long without input an avatar eases back to neutral; 0 = off.")

    @property
    def tau_s(self) -> float:
        return self.tau_ms / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AvatarsConfig:
    ids: tuple[str, ...] = setting(
        ("default",), ListOf(AVATAR_ID, unique=True),
        "Avatars created at start. Inputs addressing other ids create them, up to `max`.")
    max: int = setting(64, Int(1, 100_000), "Most avatars this instance holds.")
    shard: Shard | None = setting(  # noqa: RUF009
        None, Optional(ShardText()),
        "`k/n`: this instance is shard k of n and owns the ids whose CRC-32 (UTF-8) modulo n "
        "is k-1; run one instance per k on the same broker. null = owns every id.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        ids, limit = values.get("ids", ("default",)), values.get("max", 64)
        if len(ids) > limit:
            raise Invalid(f"at most max = {limit} ids", f"{len(ids)} ids", ("ids",))

    @property
    def owned_ids(self) -> tuple[str, ...]:
        """The start-up ids this instance owns (all of them unless sharded)."""
        if self.shard is None:
            return self.ids
        shard = self.shard
        return tuple(avatar for avatar in self.ids if shard.owns(avatar))

    def owns(self, avatar_id: str) -> bool:
        return self.shard is None or self.shard.owns(avatar_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class LivelinessConfig:
    blink: bool = setting(
        False, Bool(),
        "Procedural blinks (both eyes, fast close, slower open) at random intervals; a blink "
        "waits while the eyes are wide (surprise, fear).")
    blink_interval_s: tuple[float, ...] = setting(
        (2.0, 6.0), ListOf(Number(0.5, 60.0)),
        "`[min, max]`: seconds from one blink to the next, drawn uniformly for every blink.")
    breathing: bool = setting(
        False, Bool(), "A slow idle layer (jaw, lips, inner brows; amplitude <= 0.03).")
    seed: int | None = setting(
        None, Optional(Int(0, 2**32 - 1)),
        "Seed of the blink timing; null = different every run.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        interval = values.get("blink_interval_s", (2.0, 6.0))
        if len(interval) != 2 or interval[0] > interval[1]:
            raise Invalid("two numbers [min, max] with min <= max",
                          "[" + ", ".join(f"{v:g}" for v in interval) + "]", ("blink_interval_s",))

    @property
    def enabled(self) -> bool:
        return self.blink or self.breathing


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    max_payload_bytes: int = setting(
        65536, Int(64, 16 * 1024 * 1024),
        "Larger OSC datagrams and MQTT payloads are dropped and counted (`oversize`).")
    rate_limit_per_source: float = setting(
        0.0, Number(0.0),
        "Messages per second accepted from one source address or MQTT client; excess is "
        "dropped and counted; 0 = no limit.")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    """The whole validated configuration of one bridge instance."""

    frame_rate: int = setting(60, Int(1, 240), "Frames per second sent to every output.")
    stats_interval_s: float = setting(
        10.0, Number(0.0), "Seconds between stats log lines; 0 = no stats lines.")
    log_level: str = setting(
        "info", Choice("debug", "info", "warning", "error"), "Logging level (`-v` = debug).")
    model: ModelConfig = setting(ModelConfig, Section(ModelConfig), "")  # noqa: RUF009
    smoothing: SmoothingConfig = setting(SmoothingConfig, Section(SmoothingConfig), "")  # noqa: RUF009
    avatars: AvatarsConfig = setting(AvatarsConfig, Section(AvatarsConfig), "")  # noqa: RUF009
    limits: LimitsConfig = setting(LimitsConfig, Section(LimitsConfig), "")  # noqa: RUF009
    liveliness: LivelinessConfig = setting(LivelinessConfig, Section(LivelinessConfig), "")  # noqa: RUF009
    inputs: tuple[InputConfig, ...] = setting(
        lambda: (OscInputConfig(), MqttInputConfig()), TypedList(INPUT_TYPES),
        "Where VAD and emotions come from. Absent = the defaults; `[]` = no inputs.")
    outputs: tuple[OutputConfig, ...] = setting(
        lambda: (VmcOutputConfig(),), TypedList(OUTPUT_TYPES),
        "Where blendshapes go, each bound to one avatar. Absent = the defaults.")

    @property
    def frame_period_s(self) -> float:
        return 1.0 / self.frame_rate

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        bound: dict[tuple[str, int], int] = {}
        for index, source in enumerate(values.get("inputs", ())):
            if isinstance(source, OscInputConfig):
                first = bound.setdefault((source.host, source.port), index)
                if first != index:
                    raise Invalid(f"a port not used by OSC input inputs[{first}]",
                                  f"{source.host}:{source.port} again", ("inputs", index, "port"))
        recording: dict[str, int] = {}
        for index, sink in enumerate(values.get("outputs", ())):
            if isinstance(sink, RecordOutputConfig):
                first = recording.setdefault(sink.path, index)
                if first != index:  # both would truncate the file and interleave their rows
                    raise Invalid(f"a path not used by record output outputs[{first}]",
                                  f"{sink.path!r} again", ("outputs", index, "path"))
