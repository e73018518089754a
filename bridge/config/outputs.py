"""The output types of the config: one frozen dataclass per sender, selected by its ``type`` key,
each bound to one avatar.

A new output is one dataclass with a ``type`` ClassVar plus one entry in ``OUTPUT_TYPES`` and the
``OutputConfig`` union. Wire facts cited below are from docs/references.md.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from vadbridge.config.errors import Invalid
from vadbridge.config.mqtt import MqttConnectionConfig, mqtt_reconnect_max
from vadbridge.config.specs import (
    Bool,
    Choice,
    Context,
    Int,
    NewFilePath,
    Number,
    OffOrAtLeast,
    Spec,
    Text,
    default_of,
    setting,
)
from vadbridge.config.values import (
    AVATAR_DOC,
    AVATAR_ID,
    HOST,
    LABEL_255,
    OSC_PREFIX,
    PORT,
    PUBLISH_TOPIC,
)
from vadbridge.config.vtube_studio import VtubeStudioOutputConfig

__all__ = [
    "IFACIALMOCAP_PORT",
    "OUTPUT_TYPES",
    "IFacialMocapOutputConfig",
    "LiveLinkOutputConfig",
    "MqttOutputConfig",
    "OscOutputConfig",
    "OutputConfig",
    "RecordOutputConfig",
    "VmcOutputConfig",
    "VtubeStudioOutputConfig",
]

_RECORDING = NewFilePath("recording")

# Live Link Face's device id: the app always sends a 36-character UUID, and widely used decoders
# (PyLiveLinkFace, the NeuroSync player, blender_livelinkface) read exactly 36 bytes there.
LIVE_LINK_DEVICE_ID_LENGTH: Final = 36
_LIVE_LINK_DEVICE_ID = Text(
    f"exactly {LIVE_LINK_DEVICE_ID_LENGTH} printable ASCII characters, like the app's UUID "
    "device id (e.g. 4F8E2A51-0C8D-5B7A-9E36-1D2C3B4A5F60): decoders such as PyLiveLinkFace "
    f"read exactly {LIVE_LINK_DEVICE_ID_LENGTH} bytes",
    lambda text: len(text) == LIVE_LINK_DEVICE_ID_LENGTH and text.isascii()
    and text.isprintable(),
)
# Fixed forever: the default device id of a subject must not change between versions.
_DEVICE_ID_NAMESPACE: Final = uuid.UUID("db9e7e28-4b64-59d1-b2b3-8d6c314c864f")


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
        presets = values.get("vrm_presets", default_of(cls, "vrm_presets"))
        if values.get("arkit") is False and presets == "none":
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
        "array = one message `<prefix>` with the 52 floats in the model's order "
        "(`vadbridge.ARKIT_NAMES`: alphabetical, not Apple's or Live Link's order).")
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
    # "" = derived from the subject in __post_init__ (the YAML cannot give "": it is refused).
    device_id: str = setting(
        "", _LIVE_LINK_DEVICE_ID,
        "Device id sent in every packet. Default: a UUID derived from `subject` (uuid5, upper "
        "case like the app's), the same on every start. An id of another length is refused "
        "rather than padded: padding would silently send an id other than the one configured.")

    def __post_init__(self) -> None:
        if not self.device_id:
            object.__setattr__(self, "device_id", self.default_device_id(self.subject))

    @staticmethod
    def default_device_id(subject: str) -> str:
        """The 36-character UUID (uuid5 of ``subject``, upper case) sent when none is set."""
        # uuid.uuid5 by hand: a lone surrogate (a YAML escape) must not crash the derivation.
        name = subject.encode("utf-8", "surrogatepass")
        digest = hashlib.sha1(_DEVICE_ID_NAMESPACE.bytes + name, usedforsecurity=False).digest()
        return str(uuid.UUID(bytes=digest[:16], version=5)).upper()


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOutputConfig:
    """Recording: every frame as a row of a Live Link Face CSV (Unreal, Blender, Maya importers)."""

    type: ClassVar[str] = "record"
    path: str = setting(
        "take.csv", _RECORDING,
        "CSV file to write, created or truncated at start (default: take.csv beside the config "
        "file).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if "path" not in values:
            # The default is relative to the config file's directory too.
            values["path"] = _RECORDING.check(default_of(cls, "path"), ctx)
        if ctx.config_file is not None and Path(values["path"]).resolve() == ctx.config_file:
            raise Invalid("a recording path other than the config file (it would be "
                          "overwritten)", "the config file itself", ("path",))


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttOutputConfig(MqttConnectionConfig):
    """MQTT publisher: `{"t": s, "frame": n, "blendshapes": {name: value}}` (JSON, QoS 0)."""

    type: ClassVar[str] = "mqtt"
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    topic: str = setting("vadbridge/<avatar>/blendshapes", PUBLISH_TOPIC, "Topic to publish to.")
    rate_hz: float = setting(
        30.0, Number(0.1, 1000.0),
        "Most messages per second; frames in between are coalesced (the newest is sent).")
    reconnect_max_s: float = mqtt_reconnect_max("; frames meanwhile are dropped.")


IFACIALMOCAP_PORT: Final = 49983
"""The iPhone app's port: it takes handshakes on it, and streams to the PC's port 49983
(docs/references.md, "iFacialMocap"), where receivers listen."""


class _ReplyPort(Spec):
    """A port, or ``source``: the port the handshake came from."""

    expected = "an integer 1..65535, or source (the port the handshake came from)"

    def check(self, value: object, ctx: Context) -> object:
        if value == "source":
            return value
        try:
            return PORT.check(value, ctx)
        except Invalid:
            raise self.invalid(value) from None


_PUSH_KEYS: Final = ("host", "port", "format")
_HANDSHAKE_KEYS: Final = ("listen_host", "listen_port", "reply_port", "max_receivers",
                          "handshake_timeout_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class IFacialMocapOutputConfig:
    """iFacialMocap (the iPhone app's text frames, `eyeBlink_L-37|…|=head#…|`) for VSeeFace,
    Warudo, VNyan, SnekStudio and VRCFaceTracking's iFacialMocap module. `push` streams to one
    receiver (the app's "Destination IP address"); `handshake` plays the phone: it streams to
    each receiver that sends the handshake to `listen_port`. A key of the other mode is an
    error."""

    type: ClassVar[str] = "ifacialmocap"
    mode: str = setting(
        "push", Choice("push", "handshake"),
        "push = stream to `host:port` (receivers that listen on 49983 take frames unasked; the "
        "only mode for a receiver on this machine, which holds port 49983 itself); handshake = "
        "listen on `listen_host:listen_port` and stream to each receiver whose handshake arrives "
        "there (a receiver on another machine that asks for the phone's IP: give it this one).")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    host: str = setting("127.0.0.1", HOST, "push: the receiver's host.")
    port: int = setting(
        IFACIALMOCAP_PORT, PORT, f"push: the receiver's port (they listen on {IFACIALMOCAP_PORT}).")
    format: Literal["v1", "v2"] = setting(
        "v1", Choice("v1", "v2"),
        "push: v1 = `name-value` (what the app sends when no receiver asked), v2 = `name&value` "
        "(what receivers ask for with `|sendDataVersion=v2`; VRCFaceTracking's module needs it).")
    listen_host: str = setting(
        "0.0.0.0", HOST,
        "handshake: address to listen on for handshakes; 0.0.0.0 = every interface (receivers "
        "are on other machines; the daemon logs a warning).")
    listen_port: int = setting(
        IFACIALMOCAP_PORT, PORT,
        f"handshake: UDP port to listen on (receivers send the handshake to {IFACIALMOCAP_PORT}).")
    reply_port: int | Literal["source"] = setting(
        IFACIALMOCAP_PORT, _ReplyPort(),
        "handshake: port on the receiver's address that frames go to; the app streams to "
        f"{IFACIALMOCAP_PORT} whatever port the handshake came from.")
    max_receivers: int = setting(
        16, Int(1, 256),
        "handshake: most receivers streamed to at once; further handshakes are refused "
        "(counted, logged once).")
    handshake_timeout_s: float = setting(
        0.0, OffOrAtLeast(0.1),
        "handshake: stop streaming to a receiver this long after its last handshake; 0 = never "
        "(receivers send it once, when they connect). A receiver that closes its port is "
        "dropped either way, at the next frame after the ICMP port-unreachable.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        mode = values.get("mode", default_of(cls, "mode"))
        other_mode, other_keys = (("push", _PUSH_KEYS) if mode == "handshake"
                                  else ("handshake", _HANDSHAKE_KEYS))
        for key in other_keys:
            if key in values:
                raise Invalid(f"mode: {other_mode} for this key ({key} is a {other_mode}-mode "
                              "setting)", f"mode: {mode}", (key,))


# VtubeStudioOutputConfig lives in vtube_studio.py with the mapping-row language it reads.
OutputConfig = (VmcOutputConfig | OscOutputConfig | LiveLinkOutputConfig | RecordOutputConfig
                | MqttOutputConfig | IFacialMocapOutputConfig | VtubeStudioOutputConfig)
OUTPUT_TYPES: dict[str, Any] = {
    cls.type: cls for cls in (VmcOutputConfig, OscOutputConfig, LiveLinkOutputConfig,
                              RecordOutputConfig, MqttOutputConfig, IFacialMocapOutputConfig,
                              VtubeStudioOutputConfig)
}
