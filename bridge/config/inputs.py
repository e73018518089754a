"""The input types of the config: one frozen dataclass per receiver, selected by its ``type`` key.

A new input is one dataclass with a ``type`` ClassVar plus one entry in ``INPUT_TYPES`` and the
``InputConfig`` union.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar

from vadbridge.config.mqtt import (
    MqttConnectionConfig,
    mqtt_client_id,
    mqtt_keepalive,
    mqtt_reconnect_max,
)
from vadbridge.config.specs import IpNetworkText, ListOf, setting
from vadbridge.config.values import HOST, PORT, TOPIC_PREFIX

__all__ = ["INPUT_TYPES", "InputConfig", "MqttInputConfig", "OscInputConfig"]


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
class MqttInputConfig(MqttConnectionConfig):
    """MQTT subscriber: `<topic_prefix>/<avatar>/vad` and `<topic_prefix>/<avatar>/emotion`."""

    type: ClassVar[str] = "mqtt"
    topic_prefix: str = setting(
        "vadbridge", TOPIC_PREFIX,
        "Subscribes `<prefix>/+/vad` and `<prefix>/+/emotion`; the `+` level is the avatar id "
        "(only this instance's avatars when `avatars.shard` is set with explicit ids).")
    client_id: str | None = mqtt_client_id("between bridge instances")
    keepalive_s: int = mqtt_keepalive(
        "MQTT keep-alive interval; a dead broker is noticed within ~1.5x.")
    reconnect_max_s: float = mqtt_reconnect_max(
        ". The daemon keeps streaming while the broker is away.")


InputConfig = OscInputConfig | MqttInputConfig
INPUT_TYPES: dict[str, Any] = {cls.type: cls for cls in (OscInputConfig, MqttInputConfig)}
