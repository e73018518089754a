"""Inputs. The pure parsers and admission control are exported here; the sources that do I/O
live in their own modules: ``osc.OscSource``, ``mqtt.MqttSource``."""

from vadbridge.inputs.admission import RateLimiter, SenderAllowList
from vadbridge.inputs.parse import DEFAULT_AVATAR, Parsed, parse_mqtt, parse_osc_message

__all__ = [
    "DEFAULT_AVATAR",
    "Parsed",
    "RateLimiter",
    "SenderAllowList",
    "parse_mqtt",
    "parse_osc_message",
]
