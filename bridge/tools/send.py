"""``vadbridge send``: hand-test a running bridge by sending VAD or an emotion over OSC or MQTT.

Messages are exactly the bridge's input forms (bridge/inputs/parse.py): OSC ``/vad f f f`` and
``/emotion s f``, under ``/avatar/<id>/`` with ``--avatar``; MQTT JSON
``{"valence", "arousal", "dominance"}`` on ``<prefix>/<avatar>/vad`` and
``{"emotion", "intensity"}`` on ``<prefix>/<avatar>/emotion``. ``--sweep`` tours the basic
emotions (``sweep_schedule``), streaming interpolated VAD at 30 Hz against absolute deadlines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import sys
from collections.abc import Sequence
from typing import Any, Final, Protocol

import aiomqtt
import numpy as np
import numpy.typing as npt

from vadbridge.commands.args import (
    UsageError,
    emotion_vad,
    fail,
    host_port,
    number_in,
    positive_float,
)
from vadbridge.config import AVATAR_ID_PATTERN, AVATAR_ID_RULE
from vadbridge.core.osc_codec import encode_message
from vadbridge.model.emotions import BASIC_EMOTIONS, emotion_to_vad

__all__ = [
    "DEFAULT_TOUR",
    "add_parser",
    "mqtt_emotion_message",
    "mqtt_vad_message",
    "osc_emotion_packet",
    "osc_vad_packet",
    "sweep_schedule",
]

DEFAULT_OSC: Final = "127.0.0.1:9000"
DEFAULT_TOPIC_PREFIX: Final = "vadbridge"
# Neutral, every other basic emotion in the model card's order, back to neutral.
DEFAULT_TOUR: Final[tuple[str, ...]] = (
    "neutral",
    *(name for name in BASIC_EMOTIONS if name != "neutral"),
    "neutral",
)
SWEEP_HOLD_S: Final = 1.5
SWEEP_TRANSITION_S: Final = 1.0
SWEEP_RATE_HZ: Final = 30.0
MQTT_TIMEOUT_S: Final = 10.0

Vad = npt.NDArray[np.float32]


# --- pure parts -------------------------------------------------------------------------------


_axis_value = number_in(-1.0, 1.0, "VAD values")


def _avatar(text: str) -> str:
    if AVATAR_ID_PATTERN.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"invalid avatar id {text!r}: expected {AVATAR_ID_RULE}"
        )
    return text


def sweep_schedule(
    stops: Sequence[str] = DEFAULT_TOUR,
    *,
    hold_s: float = SWEEP_HOLD_S,
    transition_s: float = SWEEP_TRANSITION_S,
    rate_hz: float = SWEEP_RATE_HZ,
) -> list[tuple[float, Vad]]:
    """The tour as ``(t_s, vad)`` samples every ``1/rate_hz`` seconds from t = 0.

    Each stop (an emotion name) is held for ``hold_s``, then the VAD eases to the next stop over
    ``transition_s`` (smoothstep: zero velocity at both ends, so the face neither jumps nor
    stops abruptly). The last sample is the last stop at the tour's end time.
    """
    if not stops:
        raise ValueError("a sweep needs at least one stop")
    if not (math.isfinite(hold_s) and hold_s >= 0 and math.isfinite(transition_s)):
        raise ValueError(f"hold_s must be >= 0, got {hold_s!r}")
    if not transition_s >= 0:
        raise ValueError(f"transition_s must be >= 0, got {transition_s!r}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be > 0, got {rate_hz!r}")
    points = np.array([emotion_to_vad(stop) for stop in stops], dtype=np.float64)
    segment_s = hold_s + transition_s
    total_s = len(stops) * hold_s + (len(stops) - 1) * transition_s
    count = math.floor(total_s * rate_hz + 1e-9) + 1
    times = [k / rate_hz for k in range(count)]
    if total_s - times[-1] > 1e-9:
        times.append(total_s)
    last = len(stops) - 1
    schedule: list[tuple[float, Vad]] = []
    for t in times:
        index = min(int(t // segment_s), last) if segment_s > 0 else last
        into_s = t - index * segment_s
        if index == last or into_s <= hold_s:
            vad = points[index]
        else:
            u = min((into_s - hold_s) / transition_s, 1.0)
            vad = points[index] + u * u * (3.0 - 2.0 * u) * (points[index + 1] - points[index])
        schedule.append((t, vad.astype(np.float32)))
    return schedule


def _osc_address(leaf: str, avatar: str | None) -> str:
    return f"/{leaf}" if avatar is None else f"/avatar/{avatar}/{leaf}"


def osc_vad_packet(vad: Sequence[float] | Vad, avatar: str | None = None) -> bytes:
    """``/vad f f f`` (or ``/avatar/<id>/vad``)."""
    return encode_message(_osc_address("vad", avatar), "fff", [float(x) for x in vad])


def osc_emotion_packet(name: str, intensity: float, avatar: str | None = None) -> bytes:
    """``/emotion s f`` (or ``/avatar/<id>/emotion``)."""
    return encode_message(_osc_address("emotion", avatar), "sf", [name, float(intensity)])


def mqtt_vad_message(
    vad: Sequence[float] | Vad, avatar: str, prefix: str = DEFAULT_TOPIC_PREFIX
) -> tuple[str, bytes]:
    """``(<prefix>/<avatar>/vad, {"valence", "arousal", "dominance"})``."""
    values = {
        axis: float(x) for axis, x in zip(("valence", "arousal", "dominance"), vad, strict=True)
    }
    return f"{prefix}/{avatar}/vad", json.dumps(values).encode()


def mqtt_emotion_message(
    name: str, intensity: float, avatar: str, prefix: str = DEFAULT_TOPIC_PREFIX
) -> tuple[str, bytes]:
    """``(<prefix>/<avatar>/emotion, {"emotion", "intensity"})``."""
    payload = {"emotion": name, "intensity": float(intensity)}
    return f"{prefix}/{avatar}/emotion", json.dumps(payload).encode()


# --- transports -------------------------------------------------------------------------------


class _Transport(Protocol):
    description: str

    async def vad(self, vad: Sequence[float] | Vad, *, last: bool) -> None: ...

    async def emotion(self, name: str, intensity: float) -> None: ...


class _OscTransport:
    def __init__(self, sock: socket.socket, avatar: str | None, description: str) -> None:
        self._sock = sock
        self._avatar = avatar
        self.description = description

    async def vad(self, vad: Sequence[float] | Vad, *, last: bool) -> None:
        self._sock.send(osc_vad_packet(vad, self._avatar))

    async def emotion(self, name: str, intensity: float) -> None:
        self._sock.send(osc_emotion_packet(name, intensity, self._avatar))


class _MqttTransport:
    def __init__(self, client: aiomqtt.Client, avatar: str, prefix: str, description: str) -> None:
        self._client = client
        self._avatar = avatar
        self._prefix = prefix
        self.description = description

    async def vad(self, vad: Sequence[float] | Vad, *, last: bool) -> None:
        # A stream goes at QoS 0 like any live input; the final value is acknowledged (QoS 1)
        # so that disconnecting right after cannot lose it.
        topic, payload = mqtt_vad_message(vad, self._avatar, self._prefix)
        await self._client.publish(topic, payload, qos=1 if last else 0)

    async def emotion(self, name: str, intensity: float) -> None:
        topic, payload = mqtt_emotion_message(name, intensity, self._avatar, self._prefix)
        await self._client.publish(topic, payload, qos=1)


async def _play_sweep(
    transport: _Transport, schedule: list[tuple[float, Vad]], speed: float
) -> None:
    loop = asyncio.get_running_loop()
    start_s = loop.time()
    for index, (t_s, vad) in enumerate(schedule):
        # Absolute deadlines: a late sample does not delay the ones after it.
        delay_s = start_s + t_s / speed - loop.time()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        await transport.vad(vad, last=index == len(schedule) - 1)


async def _deliver(args: argparse.Namespace, transport: _Transport) -> None:
    if args.sweep:
        schedule = sweep_schedule()
        print(
            f"sweep to {transport.description}: {' -> '.join(DEFAULT_TOUR)} "
            f"({schedule[-1][0] / args.speed:.1f} s, {len(schedule)} messages)"
        )
        await _play_sweep(transport, schedule, args.speed)
    elif args.emotion is not None:
        await transport.emotion(args.emotion, args.intensity)
        print(f"sent emotion {args.emotion!r} x {args.intensity:g} to {transport.description}")
    else:
        await transport.vad(args.vad, last=True)
        values = " ".join(f"{x:g}" for x in args.vad)
        print(f"sent VAD {values} to {transport.description}")


async def _send_osc(args: argparse.Namespace) -> None:
    host, port = args.osc
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.connect(address)
        await _deliver(args, _OscTransport(sock, args.avatar, f"osc {host}:{port}"))


async def _send_mqtt(args: argparse.Namespace) -> None:
    host, port = args.mqtt
    client = aiomqtt.Client(host, port, timeout=MQTT_TIMEOUT_S)
    async with client:
        description = f"mqtt {host}:{port} {args.topic_prefix}/{args.avatar}"
        await _deliver(args, _MqttTransport(client, args.avatar, args.topic_prefix, description))


def _check(args: argparse.Namespace) -> None:
    """Cross-argument checks argparse cannot express; raises ``UsageError``."""
    if args.intensity is not None and args.emotion is None:
        raise UsageError("--intensity needs --emotion")
    if args.emotion is not None:
        args.emotion = args.emotion.strip()
        args.intensity = 1.0 if args.intensity is None else args.intensity
        emotion_vad(args.emotion, args.intensity)  # names the close matches for an unknown one
    if args.mqtt is not None:
        if args.avatar is None:
            raise UsageError("--mqtt needs --avatar ID (the topic is <prefix>/<avatar>/...)")
        prefix = args.topic_prefix
        if not prefix or any(c in prefix for c in "+#\0") or prefix.endswith("/"):
            raise UsageError(
                f"--topic-prefix must be non-empty, without + # or a trailing /: {prefix!r}"
            )
    elif args.topic_prefix != DEFAULT_TOPIC_PREFIX:
        raise UsageError("--topic-prefix only applies with --mqtt")
    if args.speed != 1.0 and not args.sweep:
        raise UsageError("--speed only applies with --sweep")


def run_send(args: argparse.Namespace) -> int:
    try:
        _check(args)
    except UsageError as error:
        return fail("send", error)
    try:
        asyncio.run(_send_mqtt(args) if args.mqtt is not None else _send_osc(args))
    except (OSError, aiomqtt.MqttError) as error:
        where = (
            "MQTT broker {}:{}".format(*args.mqtt) if args.mqtt else "OSC {}:{}".format(*args.osc)
        )
        hint = (
            " (is anything listening there?)" if isinstance(error, ConnectionRefusedError) else ""
        )
        print(f"vadbridge send: cannot send to {where}: {error}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send VAD or an emotion to a running bridge (hand testing)",
        description=(
            "Send one VAD value or emotion, or a sweep through the basic emotions, to a running "
            "bridge over OSC or MQTT."
        ),
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--vad", nargs=3, type=_axis_value, metavar=("V", "A", "D"),
        help="valence, arousal, dominance, each in [-1, 1]",
    )  # fmt: skip
    what.add_argument(
        "--emotion", metavar="NAME",
        help="an emotion name or mix (a+b, a:0.7+b:0.3); `vadbridge infer --list-emotions` "
        "shows the names",
    )  # fmt: skip
    what.add_argument(
        "--sweep", action="store_true",
        help=f"tour the basic emotions: {SWEEP_HOLD_S:g} s holds, {SWEEP_TRANSITION_S:g} s eased "
        f"transitions, VAD streamed at {SWEEP_RATE_HZ:g} Hz",
    )  # fmt: skip
    parser.add_argument(
        "--intensity", type=float, metavar="F",
        help="with --emotion: intensity in [0, 1] (default: 1)",
    )  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        # A string default goes through type= like a typed value, and shows as typed in --help.
        "--osc", type=host_port, default=DEFAULT_OSC, metavar="HOST:PORT",
        help="the bridge's OSC input",
    )  # fmt: skip
    where.add_argument(
        "--mqtt", type=host_port, metavar="HOST:PORT",
        help="send over MQTT through this broker instead of OSC",
    )  # fmt: skip
    parser.add_argument(
        "--avatar", type=_avatar, metavar="ID",
        help="avatar id (OSC: /avatar/ID/...; required with --mqtt)",
    )  # fmt: skip
    parser.add_argument(
        "--topic-prefix", default=DEFAULT_TOPIC_PREFIX, metavar="PREFIX",
        help="with --mqtt: the topics' prefix (PREFIX/ID/vad, PREFIX/ID/emotion)",
    )  # fmt: skip
    parser.add_argument(
        "--speed", type=positive_float, default=1.0, metavar="F",
        help="with --sweep: play the sweep F times faster",
    )  # fmt: skip
    parser.set_defaults(func=run_send)
