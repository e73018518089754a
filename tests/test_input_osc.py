"""OscSource over real UDP sockets, packets built by python-osc (an independent encoder)."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from source_harness import TIMEOUT_S, Collector, run, running, until

from vadbridge.core.stats import InputStats
from vadbridge.core.types import VadSample
from vadbridge.inputs import osc as osc_module
from vadbridge.inputs.osc import OscSource
from vadbridge.model.emotions import emotion_to_vad


def message(address: str, *args: tuple[str, Any]) -> bytes:
    """An OSC message with explicit type tags, built by python-osc."""
    builder = OscMessageBuilder(address)
    for tag, value in args:
        builder.add_arg(value, tag)
    return bytes(builder.build().dgram)


def bundle(*messages: bytes, timetag: int = 0) -> bytes:
    """A bundle of prebuilt messages; ``timetag`` in Unix seconds (0 = immediately)."""
    builder = OscBundleBuilder(timetag)
    for dgram in messages:
        builder.add_content(OscMessage(dgram))
    return bytes(builder.build().dgram)


async def with_source(
    body: Callable[[OscSource, Collector, socket.socket], Awaitable[None]],
    stats: InputStats | None = None,
    **options: Any,
) -> InputStats:
    stats = stats or InputStats()
    source = OscSource("127.0.0.1", 0, stats=stats, **options)
    await source.start()
    collector = Collector()
    async with running(source, collector):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            await asyncio.sleep(0)  # let run() install the callback
            await body(source, collector, sender)
    return stats


def send_all(sender: socket.socket, port: int, datagrams: Sequence[bytes]) -> None:
    for datagram in datagrams:
        sender.sendto(datagram, ("127.0.0.1", port))


def vad3(v: float, a: float, d: float) -> tuple[float, float, float]:
    # Values as they come back from float32 on the wire.
    return (float(_f32(v)), float(_f32(a)), float(_f32(d)))


def _f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def test_every_accepted_form_arrives_over_udp() -> None:
    happy = tuple(float(x) for x in emotion_to_vad("happiness", 0.5))
    mixed = tuple(float(x) for x in emotion_to_vad("happiness:0.7+surprise:0.3"))
    datagrams = [
        message("/vad", ("f", 0.25), ("f", -0.5), ("f", 0.75)),
        message("/vad", ("i", 1), ("h", -1), ("d", 0.125)),  # ints and doubles count as floats
        message("/vad/valence", ("f", 0.5)),
        message("/vad/arousal", ("d", -0.25)),
        message("/vad/dominance", ("i", 0)),
        message("/emotion", ("s", "happiness"), ("f", 0.5)),
        message("/emotion", ("s", "happiness:0.7+surprise:0.3")),
        message("/avatar/npc-1/vad", ("f", 0.5), ("f", 0.5), ("f", 0.5)),
        message("/avatar/npc-2/emotion", ("s", "happiness"), ("d", 0.5)),
        message("/vad", ("f", 4.0), ("f", 0.0), ("f", -4.0)),  # clipped
    ]
    expected = [
        VadSample("default", vad3(0.25, -0.5, 0.75)),
        VadSample("default", (1.0, -1.0, 0.125)),
        VadSample("default", (0.5, None, None)),
        VadSample("default", (None, -0.25, None)),
        VadSample("default", (None, None, 0.0)),
        VadSample("default", happy),  # type: ignore[arg-type]
        VadSample("default", mixed),  # type: ignore[arg-type]
        VadSample("npc-1", (0.5, 0.5, 0.5)),
        VadSample("npc-2", happy),  # type: ignore[arg-type]
        VadSample("default", (1.0, 0.0, -1.0)),
    ]

    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, datagrams)
        assert await collector.wait_for(len(expected)) == expected

    stats = run_and_return(body)
    assert stats.snapshot() == {
        "accepted": {"osc": len(expected)},
        "rejected": {}, "rejected_by_source": {},
        "clipped": {"osc": 1}, "ignored": {},
    }


def run_and_return(
    body: Callable[[OscSource, Collector, socket.socket], Awaitable[None]], **options: Any
) -> InputStats:
    result: list[InputStats] = []

    async def main() -> None:
        result.append(await with_source(body, **options))

    run(main())
    return result[0]


def test_bundle_messages_arrive_in_order_even_when_time_tagged_in_the_future() -> None:
    inner = [
        message("/vad/valence", ("f", 0.5)),
        message("/avatar/b/vad/arousal", ("f", 0.25)),
    ]
    # python-osc's own dispatcher would sleep on the event loop until then.
    far_future = int(time.time()) + 365 * 24 * 3600

    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, [bundle(*inner, timetag=far_future)])
        assert await collector.wait_for(2) == [
            VadSample("default", (0.5, None, None)),
            VadSample("b", (None, 0.25, None)),
        ]

    run_and_return(body)


def test_malformed_batch_is_counted_exactly_and_streaming_continues() -> None:
    too_big = message("/vad", ("s", "x" * 600), ("f", 0.0), ("f", 0.0))
    bad = [
        b"hello",  # not OSC
        b"/vad\x00\x00\x00\x00,fff\x00\x00\x00\x00\x00\x00",  # truncated arguments
        b"#bundle\x00\x00\x00",  # truncated bundle header
        b"/vad\x00\x00\x00\x00,fxf\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # bad tag
        too_big,
        message("/vad", ("f", 0.1), ("f", 0.2)),
        message("/vad/valence"),
        message("/vad", ("s", "0.1"), ("f", 0.2), ("f", 0.3)),
        message("/vad", ("T", True), ("f", 0.2), ("f", 0.3)),
        message("/emotion", ("f", 1.0)),
        message("/vad", ("f", math.nan), ("f", 0.0), ("f", 0.0)),
        message("/vad/arousal", ("d", math.inf)),
        message("/emotion", ("s", "glee")),
        message("/emotion", ("s", "joy"), ("f", 2.0)),
        message("/blendshape", ("f", 0.0)),
        message("/avatar/no space/vad", ("f", 0.0), ("f", 0.0), ("f", 0.0)),
        # one bundle: one good, two bad messages
        bundle(
            message("/vad/valence", ("f", 2.0)),
            message("/vad/valence", ("f", math.nan)),
            message("/nope"),
        ),
    ]
    sentinel = message("/avatar/sentinel/vad", ("f", 0.0), ("f", 0.0), ("f", 0.0))

    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, [*bad, sentinel])
        assert await collector.wait_for(2) == [
            VadSample("default", (1.0, None, None)),
            VadSample("sentinel", (0.0, 0.0, 0.0)),
        ]

    stats = run_and_return(body, max_datagram_bytes=512)
    assert len(too_big) > 512
    assert stats.snapshot() == {
        "accepted": {"osc": 2},
        "rejected": {
            "osc.decode": 4,
            "oversize": 1,
            "osc.arity": 2,
            "osc.type": 3,
            "nonfinite": 3,
            "emotion.unknown": 1,
            "emotion.invalid": 1,
            "osc.address": 3,
        },
        "rejected_by_source": {"osc": 18},  # the 18 above: every one an OSC rejection
        "clipped": {"osc": 1}, "ignored": {},
    }


def test_datagrams_from_hosts_outside_allow_hosts_are_rejected() -> None:
    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, [message("/vad/valence", ("f", 0.9))])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as allowed:
            allowed.bind(("127.0.0.2", 0))
            send_all(allowed, source.port, [message("/vad/valence", ("f", 0.1))])
            assert await collector.wait_for(1) == [VadSample("default", (_f32(0.1), None, None))]
        await until(lambda: source.stats.rejected_total == 1)

    stats = run_and_return(body, allow_hosts=frozenset({"127.0.0.2"}))
    assert stats.snapshot()["rejected"] == {"osc.sender": 1}
    assert stats.snapshot()["accepted"] == {"osc": 1}


def test_messages_for_refused_avatars_are_counted_once_and_never_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    real_parse = osc_module.parse_osc_message

    def spy(address: str, args: tuple[Any, ...]) -> Any:
        parsed.append(address)
        return real_parse(address, args)

    monkeypatch.setattr(osc_module, "parse_osc_message", spy)
    datagrams = [
        bundle(
            message("/avatar/stranger/vad", ("f", 0.5), ("f", 0.0), ("f", 0.0)),
            message("/avatar/known/vad/valence", ("f", 0.25)),
            message("/vad/arousal", ("f", 0.5)),  # the default avatar: refused too
        ),
        message("/avatar/other/emotion", ("s", "joy")),
    ]

    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, datagrams)
        await until(lambda: source.stats.accepted_total + source.stats.rejected_total == 4)
        assert collector.samples == [VadSample("known", (0.25, None, None))]

    stats = InputStats()
    run(with_source(body, stats, admits=lambda avatar: avatar == "known"))
    assert parsed == ["/avatar/known/vad/valence"]
    assert stats.snapshot()["rejected"] == {"avatar.limit": 3}
    assert stats.snapshot()["accepted"] == {"osc": 1}


def test_start_fails_fast_when_the_port_is_taken() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
            holder.bind(("127.0.0.1", 0))
            port = holder.getsockname()[1]
            source = OscSource("127.0.0.1", port, stats=InputStats())
            with pytest.raises(OSError):
                await source.start()

    run(main())


def test_start_binds_port_zero_and_reports_the_real_port() -> None:
    async def main() -> None:
        async with OscSource("127.0.0.1", 0, stats=InputStats()) as source:
            assert source.port != 0
            assert source.name == f"osc 127.0.0.1:{source.port}"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other, pytest.raises(OSError):
                other.bind(("127.0.0.1", source.port))

    run(main())


def test_cancelling_run_closes_the_socket() -> None:
    async def main() -> None:
        source = OscSource("127.0.0.1", 0, stats=InputStats())
        task = asyncio.create_task(source.run(Collector()))
        await until(lambda: source.port != 0)
        port = source.port
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", port))  # free again
            assert again.getsockname()[1] == port

    run(main())


def test_an_exception_in_on_sample_ends_run_with_it() -> None:
    def broken(sample: VadSample) -> None:
        raise RuntimeError(f"downstream bug on {sample.avatar}")

    async def main() -> None:
        source = OscSource("127.0.0.1", 0, stats=InputStats())
        await source.start()
        task = asyncio.create_task(source.run(broken))
        await asyncio.sleep(0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            send_all(sender, source.port, [message("/vad/valence", ("f", 0.0))])
            with pytest.raises(RuntimeError, match="downstream bug on default"):
                await asyncio.wait_for(task, TIMEOUT_S)

    run(main())


def test_binding_a_non_loopback_address_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with OscSource("0.0.0.0", 0, stats=InputStats()) as source:
            assert source.port != 0

    with caplog.at_level(logging.INFO, logger="vadbridge.inputs.osc"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "0.0.0.0" in warnings[0] and "not a loopback address" in warnings[0]


def test_binding_loopback_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with OscSource("127.0.0.1", 0, stats=InputStats()):
            pass

    with caplog.at_level(logging.DEBUG, logger="vadbridge.inputs.osc"):
        run(main())
    # The listening line is debug only: `vadbridge run` names the address in its banner.
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


@pytest.mark.parametrize(
    ("options", "match"),
    [({"port": 70000}, "port"), ({"port": 0, "max_datagram_bytes": 70000}, "max_datagram_bytes")],
)
def test_invalid_options_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OscSource("127.0.0.1", stats=InputStats(), **options)


# --- every OSC type tag is read per message; input in log lines is escaped (issue 12) --------


def test_a_bundle_with_a_char_message_still_delivers_its_vad() -> None:
    char = b"/vad/valence\x00\x00\x00\x00,c\x00\x00\x00\x00\x00a"  # decodes; not a VAD value
    unknown = b"/vad\x00\x00\x00\x00,x\x00\x00\x00\x00\x00\x00"  # not OSC: this message only
    vad = message("/vad", ("f", 0.25), ("f", -0.5), ("f", 0.75))
    # By hand: python-osc's bundle parser does not know 'c'.
    elements = b"".join(struct.pack(">i", len(m)) + m for m in (char, unknown, vad))
    datagram = b"#bundle\x00" + struct.pack(">Q", 1) + elements

    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, [datagram])
        assert await collector.wait_for(1) == [VadSample("default", vad3(0.25, -0.5, 0.75))]
        await until(lambda: source.stats.rejected_total == 2)

    stats = run_and_return(body)
    assert stats.snapshot()["rejected"] == {"osc.type": 1, "osc.decode": 1}


def test_an_emotion_sent_as_a_symbol_moves_to_its_vad() -> None:
    # liblo's `oscsend localhost <port> /emotion S happiness`
    symbol = b"/emotion\x00\x00\x00\x00,S\x00\x00happiness\x00\x00\x00"
    happy = tuple(float(x) for x in emotion_to_vad("happiness"))

    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, [symbol])
        assert await collector.wait_for(1) == [VadSample("default", happy)]  # type: ignore[arg-type]

    run_and_return(body)


FORGED = "/vad\n2026-01-01 ERROR vadbridge: forged"


@pytest.mark.parametrize(
    "datagram",
    [
        message(FORGED, ("f", 0.0)),  # decodes; the parser rejects the address
        message(FORGED, ("f", 0.0))[:-8] + b",x\x00\x00",  # the decoder rejects the message
    ],
    ids=["unknown-address", "undecodable"],
)
def test_a_forged_newline_in_an_address_leaves_one_escaped_log_line(
    datagram: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(source: OscSource, collector: Collector, sender: socket.socket) -> None:
        send_all(sender, source.port, [datagram])
        await until(lambda: source.stats.rejected_total == 1)

    with caplog.at_level(logging.DEBUG, logger="vadbridge"):
        run_and_return(body)
    (record,) = [r for r in caplog.records if r.name == "vadbridge.inputs"]
    text = record.getMessage()
    assert "\n" not in text and "\r" not in text
    assert "\\n2026-01-01 ERROR vadbridge: forged" in text
