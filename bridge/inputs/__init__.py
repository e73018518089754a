"""Inputs: pure payload parsers, admission control and the two sources (OSC over UDP, MQTT)."""

from vadbridge.inputs.admission import RateLimiter, SenderAllowList
from vadbridge.inputs.mqtt import MqttSource, MqttTls
from vadbridge.inputs.osc import OscSource
from vadbridge.inputs.parse import DEFAULT_AVATAR, Parsed, parse_mqtt, parse_osc_message

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
