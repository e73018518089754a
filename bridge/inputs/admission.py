"""Admission control for input messages: who may send (an allow-list of networks) and how often
(a token bucket per sender, one token per message). Pure bookkeeping: no sockets, the clock is
injectable.

Both keep per-sender state in a dict capped at a fixed size. Senders of a real installation are
few, but UDP source addresses can be spoofed, so a flood from random addresses must not grow
memory without bound: when the cap is reached the oldest entry is dropped. Dropping an entry
only ever forgives (a cache miss re-checks the networks; a new bucket starts full), so an
attacker who can spoof many addresses gains at most one burst per evicted address, which it
could get anyway by sending from those addresses (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Hashable, Iterable

__all__ = ["IpNetwork", "RateLimiter", "SenderAllowList", "source_rate_limiter"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_SENDERS = 1024
DEFAULT_MAX_CACHED_HOSTS = 256
_TOKEN_EPSILON = 1e-9  # so that e.g. 0.1 s at 10/s, computed as 0.9999999999999998, buys a message


class SenderAllowList:
    """Accepts sender addresses inside any of ``networks`` (IP addresses or CIDR networks).

    ``allows(host)`` takes the host part of a socket address as the OS reports it (``"10.0.0.7"``,
    ``"::1"``, ``"fe80::1%eth0"``). An IPv4-mapped IPv6 sender (``"::ffff:10.0.0.7"``, what a
    dual-stack ``::`` socket reports for IPv4 peers) also matches the IPv4 networks. Verdicts
    are cached per host, at most ``max_cached_hosts`` of them.
    """

    def __init__(
        self,
        networks: Iterable[str | IpNetwork],
        *,
        max_cached_hosts: int = DEFAULT_MAX_CACHED_HOSTS,
    ) -> None:
        parsed: list[IpNetwork] = []
        for entry in networks:
            if isinstance(entry, str):
                try:
                    entry = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"allow-list entry {entry!r} is not an IP address or CIDR network"
                    ) from None
            parsed.append(entry)
        if not parsed:
            raise ValueError("an allow-list needs at least one address or network")
        if max_cached_hosts < 1:
            raise ValueError(f"max_cached_hosts must be >= 1, got {max_cached_hosts}")
        self.networks: tuple[IpNetwork, ...] = tuple(parsed)
        self.max_cached_hosts = max_cached_hosts
        self._verdicts: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._check(host)
            verdicts = self._verdicts
            if len(verdicts) >= self.max_cached_hosts:
                del verdicts[next(iter(verdicts))]
            verdicts[host] = verdict
        return verdict

    def cached_hosts(self) -> int:
        return len(self._verdicts)

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # not an IP literal: cannot be in an IP network
            return False
        if any(address in network for network in self.networks):
            return True
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return mapped is not None and any(mapped in network for network in self.networks)


class RateLimiter:
    """A token bucket per key: ``rate_per_s`` messages per second, bursts of one second's worth
    (at least one message).

    ``allow(key)`` spends a token and returns True, or returns False when the bucket is empty
    (the message is to be dropped). ``take(key, count)`` spends tokens for a batch (an OSC
    bundle: one token per message) and says how many of it may pass. Keys are whatever
    identifies a sender (an IP address for OSC, an avatar topic for MQTT). At most ``max_keys``
    buckets are kept (see the module doc).
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        max_keys: int = DEFAULT_MAX_SENDERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0.0):
            raise ValueError(f"rate_per_s must be a finite number > 0, got {rate_per_s!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.rate_per_s = float(rate_per_s)
        self.burst = max(1.0, self.rate_per_s)
        self.max_keys = max_keys
        self._clock = clock
        # key -> [tokens, time of the last update (s)]; lists, to update in place.
        self._buckets: dict[Hashable, list[float]] = {}

    def allow(self, key: Hashable) -> bool:
        bucket = self._bucket(key)
        if bucket[0] >= 1.0 - _TOKEN_EPSILON:
            bucket[0] = max(0.0, bucket[0] - 1.0)
            return True
        return False  # a refused message spends nothing

    def ready(self, key: Hashable) -> bool:
        """True if ``key`` holds at least one token (nothing is spent): whether a datagram is
        worth decoding at all."""
        return self._bucket(key)[0] >= 1.0 - _TOKEN_EPSILON

    def take(self, key: Hashable, count: int) -> int:
        """Spend ``count`` tokens for messages that arrived together (one OSC bundle); returns
        how many of them, the first ones, may pass: as many as there were whole tokens.

        The messages beyond those are refused but still spent, down to a debt of one second's
        budget, so a sender whose bundles overrun its budget is not decoded again until the
        bucket refills to a token (``ready``): a flood of huge bundles costs one decode per
        second or so, not one per datagram.
        """
        if count < 1:
            return 0
        bucket = self._bucket(key)
        tokens = bucket[0]
        granted = min(count, max(0, int(tokens + _TOKEN_EPSILON)))
        if granted == count:
            bucket[0] = max(0.0, tokens - count)
        else:
            bucket[0] = max(-self.burst, tokens - count)
        return granted

    def _bucket(self, key: Hashable) -> list[float]:
        """``key``'s bucket, refilled up to now (a new key gets a full one)."""
        now_s = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            buckets = self._buckets
            if len(buckets) >= self.max_keys:
                del buckets[next(iter(buckets))]
            bucket = buckets[key] = [self.burst, now_s]
            return bucket
        elapsed_s = max(0.0, now_s - bucket[1])  # a clock stepping back refills nothing
        bucket[0] = min(self.burst, bucket[0] + elapsed_s * self.rate_per_s)
        bucket[1] = now_s
        return bucket

    def __len__(self) -> int:
        """The number of buckets held (at most ``max_keys``)."""
        return len(self._buckets)


def source_rate_limiter(rate_per_s: float) -> RateLimiter | None:
    """One input's limiter for ``limits.rate_limit_per_source`` (0 = no limit: None). One per
    source: a flood on one input does not spend another input's budget."""
    return RateLimiter(rate_per_s) if rate_per_s > 0 else None
