"""Pure parsers for OSC messages and MQTT payloads -> validated, clipped ``VadSample``s.

The hot edge of the daemon: no I/O, no clocks. Every rejection raises ``InputError(kind,
reason)`` with a reason that names what was wrong; the sources count ``kind`` and drop the
message. Accepted forms are those of issue 4 ("Inputs"); emotion names and mixes are resolved by
``model.emotions`` (``emotion_to_vad``, ``mix_to_vad``).

Both parsers return ``Parsed(sample, clipped)`` so the source can count clipping without the
sample carrying bookkeeping. The OSC parser lives in ``parse_osc``, the MQTT parser in
``parse_mqtt``, the control panel's in ``parse_web`` and their shared pieces in ``values``; this
module is the one import point.
"""

from vadbridge.inputs.parse_mqtt import MAX_MIX_LABELS, parse_mqtt
from vadbridge.inputs.parse_osc import parse_osc_message
from vadbridge.inputs.parse_web import (
    WEB_INPUT_TYPES,
    decode_message,
    input_avatar,
    parse_web_input,
)
from vadbridge.inputs.values import DEFAULT_AVATAR, Parsed

__all__ = [
    "DEFAULT_AVATAR",
    "MAX_MIX_LABELS",
    "WEB_INPUT_TYPES",
    "Parsed",
    "decode_message",
    "input_avatar",
    "parse_mqtt",
    "parse_osc_message",
    "parse_web_input",
]
