"""The per-sender rate limit: the token bucket on a stepped clock, then over real UDP and a real
mosquitto, where one flooding sender must not starve a polite one."""

from __future__ import annotations

import asyncio
import math
import socket

import pytest
import source_harness
from conftest import Mosquitto
from pythonosc.osc_message_builder import OscMessageBuilder
from source_harness import TIMEOUT_S, run, running, until

from vadbridge.config import MqttInputConfig
from vadbridge.core.osc_codec import encode_bundle, encode_message
from vadbridge.core.stats import InputStats
from vadbridge.inputs.admission import RateLimiter
from vadbridge.inputs.mqtt import MqttSource
from vadbridge.inputs.osc import OscSource


class SteppedClock:
    def __init__(self, now_s: float = 100.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def allowed(limiter: RateLimiter, key: str, count: int) -> int:
    return sum(limiter.allow(key) for _ in range(count))


# --- the token bucket -------------------------------------------------------------------------


def test_a_new_sender_gets_a_burst_of_one_seconds_worth() -> None:
    limiter = RateLimiter(10.0, clock=SteppedClock())
    assert [limiter.allow("a") for _ in range(12)] == [True] * 10 + [False] * 2


def test_tokens_refill_at_the_rate() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(10.0, clock=clock)
    assert allowed(limiter, "a", 20) == 10
    clock.advance(0.25)
    assert allowed(limiter, "a", 20) == 2  # 2.5 tokens: two messages, half a token kept
    clock.advance(0.05)
    assert allowed(limiter, "a", 20) == 1  # 0.5 + 0.5
    clock.advance(100.0)
    assert allowed(limiter, "a", 20) == 10  # refilling stops at the burst


def test_a_tenth_of_a_second_at_ten_per_second_buys_one_message() -> None:
    # 0.1 s computed as a difference of floats is 0.0999999...; the bucket must not round it away.
    clock = SteppedClock(0.2)
    limiter = RateLimiter(10.0, clock=clock)
    assert allowed(limiter, "a", 10) == 10
    clock.now_s = 0.3
    assert allowed(limiter, "a", 5) == 1


def test_rates_below_one_per_second_still_allow_a_burst_of_one() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(0.5, clock=clock)
    assert limiter.burst == 1.0
    assert allowed(limiter, "a", 5) == 1
    clock.advance(1.0)
    assert allowed(limiter, "a", 5) == 0
    clock.advance(1.0)
    assert allowed(limiter, "a", 5) == 1


def test_fractional_rates_above_one_burst_their_rate() -> None:
    limiter = RateLimiter(2.5, clock=SteppedClock())
    assert limiter.burst == 2.5
    assert allowed(limiter, "a", 10) == 2


def test_senders_have_separate_buckets() -> None:
    limiter = RateLimiter(3.0, clock=SteppedClock())
    assert allowed(limiter, "flood", 1000) == 3
    assert allowed(limiter, "polite", 3) == 3


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(5.0, clock=clock)
    assert allowed(limiter, "a", 10) == 5
    clock.advance(-50.0)
    assert allowed(limiter, "a", 10) == 0
    clock.advance(0.2)  # measured from the stepped-back time: one token
    assert allowed(limiter, "a", 10) == 1


def test_state_stays_bounded_under_a_flood_from_random_senders() -> None:
    limiter = RateLimiter(1.0, max_keys=64, clock=SteppedClock())
    for index in range(10_000):
        limiter.allow(f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}")
    assert len(limiter) == 64


def test_eviction_only_forgives() -> None:
    limiter = RateLimiter(1.0, max_keys=2, clock=SteppedClock())
    assert allowed(limiter, "a", 5) == 1
    limiter.allow("b")
    limiter.allow("c")  # evicts "a", the oldest bucket
    assert len(limiter) == 2
    assert allowed(limiter, "a", 5) == 1  # a fresh bucket, never a harsher one


def test_a_batch_takes_one_token_per_message_and_passes_only_what_the_tokens_cover() -> None:
    limiter = RateLimiter(10.0, clock=SteppedClock())
    assert limiter.take("a", 4) == 4
    assert limiter.take("a", 30) == 6  # the 6 tokens left
    assert not limiter.ready("a")


def test_an_overrun_batch_puts_the_sender_in_debt_of_at_most_one_seconds_budget() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(10.0, clock=clock)
    assert limiter.take("a", 1000) == 10  # 990 refused: the debt stops at -10
    clock.advance(1.0)  # back to 0 tokens, not yet one
    assert not limiter.ready("a")
    clock.advance(0.1)
    assert limiter.ready("a")
    assert limiter.take("a", 3) == 1


def test_a_batch_that_fits_leaves_no_debt_and_ready_spends_nothing() -> None:
    limiter = RateLimiter(5.0, clock=SteppedClock())
    assert limiter.ready("a") and limiter.ready("a")
    assert limiter.take("a", 5) == 5
    assert limiter.take("a", 0) == 0
    assert allowed(limiter, "a", 3) == 0


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf, math.nan])
def test_invalid_rates_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_per_s must be a finite number > 0"):
        RateLimiter(rate)


def test_invalid_max_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="max_keys must be >= 1, got 0"):
        RateLimiter(1.0, max_keys=0)


# --- over real UDP ----------------------------------------------------------------------------


def osc_vad_for(avatar: str, valence: float) -> bytes:
    builder = OscMessageBuilder(f"/avatar/{avatar}/vad/valence")
    builder.add_arg(valence, "f")
    return bytes(builder.build().dgram)


class Collector(source_harness.Collector):
    def avatars(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sample in self.samples:
            counts[sample.avatar] = counts.get(sample.avatar, 0) + 1
        return counts


def test_a_flooding_osc_sender_cannot_starve_a_polite_one() -> None:
    # A frozen clock: no refill during the test, so the counts are exact however slow the machine.
    limiter = RateLimiter(10.0, clock=lambda: 0.0)
    stats = InputStats()
    collector = Collector()
    flood_count, polite_count = 60, 5  # 60 small datagrams fit the default socket buffer

    async def main() -> None:
        source = OscSource("127.0.0.1", 0, stats=stats, rate_limiter=limiter)
        await source.start()
        async with running(source, collector):
            await asyncio.sleep(0)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as polite:
                flooder.bind(("127.0.0.2", 0))  # another loopback address: another sender IP
                for index in range(flood_count):
                    flooder.sendto(osc_vad_for("flood", 0.5), ("127.0.0.1", source.port))
                    if index % 12 == 0:
                        polite.sendto(osc_vad_for("polite", 0.25), ("127.0.0.1", source.port))
                await until(lambda: stats.accepted_total + stats.rejected_total
                            == flood_count + polite_count)

    run(main())
    assert collector.avatars() == {"flood": 10, "polite": polite_count}
    assert stats.snapshot()["rejected"] == {"rate_limit": flood_count - 10}


def test_one_sender_ip_shares_its_budget_across_its_sockets() -> None:
    limiter = RateLimiter(4.0, clock=lambda: 0.0)
    stats = InputStats()
    collector = Collector()

    async def main() -> None:
        source = OscSource("127.0.0.1", 0, stats=stats, rate_limiter=limiter)
        await source.start()
        async with running(source, collector):
            await asyncio.sleep(0)
            for _ in range(10):  # a new socket (a new source port) per datagram
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                    sender.sendto(osc_vad_for("a", 0.5), ("127.0.0.1", source.port))
            await until(lambda: stats.accepted_total + stats.rejected_total == 10)

    run(main())
    assert len(collector.samples) == 4
    assert stats.snapshot()["rejected"] == {"rate_limit": 6}


def test_each_message_of_an_osc_bundle_takes_a_token() -> None:
    # A bundle used to cost one token, so 2,046 /vad messages passed a limit of 200/s as one.
    limiter = RateLimiter(100.0, clock=lambda: 0.0)  # frozen: no refill, exact counts
    stats = InputStats()
    collector = Collector()
    big = encode_bundle(
        [encode_message("/vad", "fff", [index / 300, 0.0, 0.0]) for index in range(300)]
    )

    async def main() -> None:
        source = OscSource("127.0.0.1", 0, stats=stats, rate_limiter=limiter)
        await source.start()
        async with running(source, collector):
            await asyncio.sleep(0)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(big, ("127.0.0.1", source.port))
                await until(lambda: stats.accepted_total + stats.rejected_total == 300)
                # The sender is now in debt: its next bundle is dropped undecoded, counted once.
                sender.sendto(big, ("127.0.0.1", source.port))
                await until(lambda: stats.accepted_total + stats.rejected_total == 301)

    run(main())
    assert len(collector.samples) == 100
    assert collector.samples[0].vad == (0.0, 0.0, 0.0)  # the first messages pass, in order
    assert stats.snapshot()["rejected"] == {"rate_limit": 201}


# --- over a real mosquitto --------------------------------------------------------------------


def test_a_flooded_mqtt_avatar_cannot_starve_another(mosquitto: Mosquitto) -> None:
    limiter = RateLimiter(5.0, clock=lambda: 0.0)
    stats = InputStats()
    collector = Collector()
    flood = [("vadbridge/flood/vad", b"0.5 0 0")] * 20 + [("vadbridge/flood/emotion", b"blorp")] * 5
    polite = [("vadbridge/polite/vad", b"0.1 0.2 0.3")] * 5

    async def main() -> None:
        config = MqttInputConfig(host=mosquitto.host, port=mosquitto.port)
        source = MqttSource(config, stats=stats, max_payload_bytes=4096, rate_limiter=limiter)
        async with running(source, collector):
            await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
            # Interleaved on one connection, in order (QoS 1).
            await mosquitto.publish(flood[:10] + polite + flood[10:])
            await until(lambda: stats.accepted_total + stats.rejected_total == 30)

    run(main())
    # vad and emotion share the avatar's budget; rejected ones are never parsed.
    assert collector.avatars() == {"flood": 5, "polite": 5}
    assert stats.snapshot()["rejected"] == {"rate_limit": 20}
