"""Inputs. The pure parsers and admission control are exported here; the sources that do I/O
live in their own modules: ``osc.OscSource``, ``mqtt.MqttSource`` (and the control panel,
``vadbridge.web``, a third source)."""

from vadbridge.inputs.admission import RateLimiter, SenderAllowList, source_rate_limiter
from vadbridge.inputs.parse import (
    DEFAULT_AVATAR,
    WEB_INPUT_TYPES,
    Parsed,
    decode_message,
    input_avatar,
    parse_mqtt,
    parse_osc_message,
    parse_web_input,
)

__all__ = [
    "DEFAULT_AVATAR",
    "WEB_INPUT_TYPES",
    "Parsed",
    "RateLimiter",
    "SenderAllowList",
    "decode_message",
    "input_avatar",
    "parse_mqtt",
    "parse_osc_message",
    "parse_web_input",
    "source_rate_limiter",
]
