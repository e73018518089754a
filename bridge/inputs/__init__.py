"""Inputs: pure payload parsers, admission control and the two sources (OSC over UDP, MQTT)."""

from bridge.inputs.admission import RateLimiter, SenderAllowList
from bridge.inputs.mqtt import MqttSource, MqttTls
from bridge.inputs.osc import OscSource
from bridge.inputs.parse import DEFAULT_AVATAR, Parsed, parse_mqtt, parse_osc_message

__all__ = [
    "DEFAULT_AVATAR",
    "MqttSource",
    "MqttTls",
    "OscSource",
    "Parsed",
    "RateLimiter",
    "SenderAllowList",
    "parse_mqtt",
    "parse_osc_message",
]
