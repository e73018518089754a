"""The config schema's top level: ``BridgeConfig`` and its sections, one frozen dataclass each.

Each field's metadata holds its spec and its documentation line (see ``specs.setting``); the
loader reads YAML into these classes and ``docs`` renders docs/configuration.md from them. The
input and output types live in ``inputs`` and ``outputs`` (the MQTT connection both share in
``mqtt``), the value specs in ``values``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from vadbridge.config.errors import Invalid
from vadbridge.config.inputs import INPUT_TYPES, InputConfig, MqttInputConfig, OscInputConfig
from vadbridge.config.outputs import (
    OUTPUT_TYPES,
    OutputConfig,
    RecordOutputConfig,
    VmcOutputConfig,
)
from vadbridge.config.specs import (
    Bool,
    Choice,
    Context,
    FilePath,
    Int,
    ListOf,
    Number,
    NumberOrAuto,
    OffOrAtLeast,
    Optional,
    Section,
    TypedList,
    default_of,
    setting,
)
from vadbridge.config.values import AVATAR_ID, FRAME_RATE, FRAME_RATE_RANGE, Shard, ShardText
from vadbridge.config.web import WebConfig
from vadbridge.model.api import bundled_model_names
from vadbridge.model.onnx_engine import ONNXRUNTIME_EXTRA, onnxruntime_installed

__all__ = [
    "AvatarsConfig",
    "BridgeConfig",
    "LimitsConfig",
    "LivelinessConfig",
    "ModelConfig",
    "SmoothingConfig",
    "SmoothingRegionConfig",
    "SmoothingSpace",
]

_MIN_STATS_INTERVAL_S = 0.1

SmoothingSpace = Literal["vad", "blendshapes"]
"""Where the animator smooths: the VAD state (``vad``) or the 52 weights (``blendshapes``)."""
# The names of core.frame_loop.PACING_MODES, which says how each waits (config cannot import
# core; core takes the default from here, and a test keeps the names equal).
PACING_MODE_NAMES = ("timer", "spin", "nanosleep", "sleep")
DEFAULT_PACING_MODE = "timer"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    checkpoint: str = setting(
        "default", FilePath("checkpoint", default_word="default", suffixes=(".npz", ".pt"),
                            names=tuple(bundled_model_names())),
        "`default` = the bundled model (vadbridge-v2); a bundled model's name (`vadbridge-v1` "
        "for comparison); otherwise a checkpoint path (stored resolved). `.pt` files need torch.")
    symmetry: bool = setting(True, Bool(), "Make left/right shapes exactly equal every frame.")
    engine: str = setting(
        "mlp", Choice("mlp", "lut", "onnxruntime"),
        "mlp = the network's forward pass (numpy); lut = a baked VAD grid with trilinear "
        "interpolation; onnxruntime = the same network run by onnxruntime, ~20-30% faster "
        f"(needs `{ONNXRUNTIME_EXTRA}`; docs/performance.md).")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if values.get("engine") == "onnxruntime" and not onnxruntime_installed():
            raise Invalid(f"the onnx and onnxruntime packages ({ONNXRUNTIME_EXTRA})",
                          "they are not installed", ("engine",))


@dataclass(frozen=True, slots=True, kw_only=True)
class SmoothingRegionConfig:
    """One region's own time constants (blendshape space only); a key left null is the
    whole face's."""

    attack_ms: float | None = setting(
        None, Optional(Number(0.0)), "null = `smoothing.attack_ms` (or `tau_ms`).")
    release_ms: float | None = setting(
        None, Optional(Number(0.0)), "null = `smoothing.release_ms` (or `tau_ms`).")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmoothingConfig:
    attack_ms: float = setting(
        120.0, Number(0.0),
        "Time constant while a value moves away from rest: a blendshape weight rising, a VAD "
        "axis leaving neutral. alpha = 1 - exp(-dt/tau): 63% of the way after tau at any frame "
        "rate, 95% after 3 tau; 0 = at once. The default puts a rise inside published onset "
        "durations (docs/references.md, \"Facial dynamics\").")
    release_ms: float = setting(
        300.0, Number(0.0),
        "Time constant while a value moves back toward rest (a weight falling, a VAD axis "
        "returning to neutral); 0 = at once. Expressions fade slower than they rise: 95% of a "
        "fall takes 0.9 s by default.")
    tau_ms: float | None = setting(
        None, Optional(Number(0.0)),
        "One time constant for both directions, the single key of earlier versions: a config "
        "with only `tau_ms` smooths as before. Not together with `attack_ms` or `release_ms`.")
    space: SmoothingSpace = setting(  # noqa: RUF009 (an immutable str; ruff cannot see the alias)
        "vad", Choice(*get_args(SmoothingSpace)),
        "vad = smooth the VAD state (the face passes through intermediate emotions; attack and "
        "release per axis, away from or toward 0); blendshapes = smooth the 52 weights.")
    upper: SmoothingRegionConfig | None = setting(  # noqa: RUF009 (setting() is a field)
        None, Optional(Section(SmoothingRegionConfig)),
        "Brows and eyes (the `brow*` and `eye*` shapes): their own time constants; needs "
        "`space: blendshapes` (in vad space one VAD state drives the whole face).")
    lower: SmoothingRegionConfig | None = setting(  # noqa: RUF009
        None, Optional(Section(SmoothingRegionConfig)),
        "Every other shape (mouth, jaw, cheeks, nose, tongue): their own time constants; needs "
        "`space: blendshapes`.")
    idle_timeout_s: float = setting(
        0.0, Number(0.0), "After this long without input an avatar eases back to neutral; 0 = off.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if values.get("tau_ms") is not None:
            for key in ("attack_ms", "release_ms"):
                if key in values:
                    raise Invalid("either tau_ms (both directions) or attack_ms and release_ms",
                                  f"{key} with tau_ms", (key,))
        if values.get("space", default_of(cls, "space")) == "vad":
            for key in ("upper", "lower"):
                if values.get(key) is not None:
                    raise Invalid("per-region time constants only with space: blendshapes (in "
                                  "vad space one VAD state drives the whole face)",
                                  f"{key} with space: vad", (key,))

    @property
    def attack_s(self) -> float:
        """The whole face's attack time constant in seconds, the animator's unit."""
        return (self.attack_ms if self.tau_ms is None else self.tau_ms) / 1000.0

    @property
    def release_s(self) -> float:
        """The whole face's release time constant in seconds."""
        return (self.release_ms if self.tau_ms is None else self.tau_ms) / 1000.0

    @property
    def upper_s(self) -> tuple[float, float] | None:
        """(attack, release) in seconds of the brows and eyes; None = the whole face's."""
        return self._region_s(self.upper)

    @property
    def lower_s(self) -> tuple[float, float] | None:
        """(attack, release) in seconds of the other shapes; None = the whole face's."""
        return self._region_s(self.lower)

    def _region_s(self, region: SmoothingRegionConfig | None) -> tuple[float, float] | None:
        if region is None:
            return None
        attack_s = self.attack_s if region.attack_ms is None else region.attack_ms / 1000.0
        release_s = self.release_s if region.release_ms is None else region.release_ms / 1000.0
        return attack_s, release_s


@dataclass(frozen=True, slots=True, kw_only=True)
class AvatarsConfig:
    ids: tuple[str, ...] = setting(
        ("default",), ListOf(AVATAR_ID, unique=True),
        "Avatars created at start. Inputs addressing other ids create them, up to `max`.")
    max: int = setting(64, Int(1, 100_000), "Most avatars this instance holds.")
    accept_new: bool = setting(
        True, Bool(),
        "Inputs addressing an avatar that is neither in `ids` nor an output's create it (up to "
        "`max`); false = only those avatars exist, so a sender spraying made-up ids cannot fill "
        "the table (they are counted as `avatar.limit`).")
    shard: Shard | None = setting(  # noqa: RUF009
        None, Optional(ShardText()),
        "`k/n`: this instance is shard k of n and owns the ids whose CRC-32 (UTF-8) modulo n "
        "is k-1; run one instance per k on the same broker. null = owns every id.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        ids = values.get("ids", default_of(cls, "ids"))
        limit = values.get("max", default_of(cls, "max"))
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
        interval = values.get("blink_interval_s", default_of(cls, "blink_interval_s"))
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
        "Messages per second accepted per sender, each input with its own budgets. An OSC "
        "sender is a source IP address (whatever its port; a datagram counts once); an MQTT "
        "sender is an avatar topic `<prefix>/<avatar>` (a broker does not tell who published). "
        "Excess is dropped and counted (`rate_limit`); 0 = no limit. See docs/security.md.")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    """The whole validated configuration of one bridge instance."""

    frame_rate: int = setting(60, FRAME_RATE, "Frames per second sent to every output.")
    pacing: str = setting(
        DEFAULT_PACING_MODE, Choice(*PACING_MODE_NAMES),
        "How the frame loop waits for each frame's deadline. timer = a kernel timer armed at the "
        "deadline (Linux; elsewhere spin); spin = sleep, then busy-wait the last 0.2 ms (the "
        "least lateness, ~0.6-0.8% of a core more); nanosleep and sleep: docs/performance.md, "
        "\"Pacing modes\".")
    idle_refresh_hz: float | Literal["auto"] = setting(
        "auto", NumberOrAuto(0.0, FRAME_RATE_RANGE[1], "each output at its receiver's rate"),
        "A face that did not change is re-sent at this rate instead of every frame (a crowd of "
        "converged faces then costs almost nothing; receivers hold the last values); a face "
        "that changes goes out every frame. `auto`: vmc and osc 2 Hz, livelink 5 Hz (Unreal "
        "marks a subject without frames unresponsive), every frame for ifacialmocap, "
        "vtube_studio, mqtt and record (docs/performance.md, \"Idle refresh\"). A number: "
        "that rate for every output; 0 = every frame.")
    stats_interval_s: float = setting(
        10.0, OffOrAtLeast(_MIN_STATS_INTERVAL_S),
        f"Seconds between stats log lines; 0 = no stats lines. At least "
        f"{_MIN_STATS_INTERVAL_S:g} s: shorter would flood the log.")
    log_level: str = setting(
        "info", Choice("debug", "info", "warning", "error"), "Logging level (`-v` = debug).")
    model: ModelConfig = setting(ModelConfig, Section(ModelConfig), "")  # noqa: RUF009
    smoothing: SmoothingConfig = setting(SmoothingConfig, Section(SmoothingConfig), "")  # noqa: RUF009
    avatars: AvatarsConfig = setting(AvatarsConfig, Section(AvatarsConfig), "")  # noqa: RUF009
    limits: LimitsConfig = setting(LimitsConfig, Section(LimitsConfig), "")  # noqa: RUF009
    liveliness: LivelinessConfig = setting(LivelinessConfig, Section(LivelinessConfig), "")  # noqa: RUF009
    web: WebConfig = setting(WebConfig, Section(WebConfig), "")  # noqa: RUF009
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
