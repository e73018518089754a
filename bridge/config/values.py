"""The config's value vocabulary: what hosts, ports, avatar ids, OSC addresses and MQTT strings
and topics may be, as specs (``config_types.Text``/``Int``) shared by the schema's modules.

Each spec's ``expected`` text is both the error message and the reference's "Accepts" column.
The MQTT limits are the protocol's (strings carry a 16-bit byte length; a published topic has
no wildcards), so a bad value fails at load rather than at the broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from vadbridge.config.types import Int, Text

__all__ = [
    "AVATAR_DOC",
    "AVATAR_ID",
    "ENV_NAME",
    "HOST",
    "LABEL_255",
    "MQTT_STRING",
    "OSC_PREFIX",
    "PORT",
    "PUBLISH_TOPIC",
    "SECRET",
    "TOPIC_PREFIX",
]

_AVATAR_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OSC_FORBIDDEN = set(" #*,?[]{}")


def _is_host(text: str) -> bool:
    return bool(text) and len(text) <= 253 and text.isprintable() and " " not in text


def _is_osc_prefix(text: str) -> bool:
    return (
        len(text) >= 2
        and text.startswith("/")
        and not text.endswith("/")
        and "//" not in text
        and text.isascii()
        and text.isprintable()
        and not _OSC_FORBIDDEN.intersection(text)
    )


def _utf8_at_most(limit: int) -> Callable[[str], bool]:
    return lambda text: 0 < len(text.encode("utf-8", "surrogatepass")) <= limit


def _is_publish_topic(text: str) -> bool:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate from a YAML escape
        return False
    # 64 bytes of room for the avatar id that replaces <avatar>.
    return (0 < size <= 65535 - 64 and "+" not in text and "#" not in text and "\0" not in text
            and not text.startswith("$"))


def _is_topic_prefix(text: str) -> bool:
    return (
        bool(text)
        and "+" not in text
        and "#" not in text
        and "\0" not in text
        and not text.startswith("$")
        and not text.endswith("/")
        and len(text.encode("utf-8", "surrogatepass")) <= 1024
    )


AVATAR_ID = Text(
    "an avatar id: 1-64 characters of A-Za-z0-9_.- (quote ids that YAML reads as numbers)",
    lambda text: _AVATAR_ID.fullmatch(text) is not None,
)
HOST = Text("a host name or IP address (non-empty, no spaces)", _is_host)
PORT = Int(1, 65535)
OSC_PREFIX = Text(
    "an OSC address: starts with '/', no trailing '/' or '//', printable ASCII without spaces "
    "or any of #*,?[]{}",
    _is_osc_prefix,
)
LABEL_255 = Text("a non-empty string of at most 255 UTF-8 bytes", _utf8_at_most(255))
MQTT_STRING = Text("a non-empty string of at most 65535 UTF-8 bytes", _utf8_at_most(65535))
TOPIC_PREFIX = Text(
    "an MQTT topic prefix: non-empty, no wildcards '+' or '#', not starting with '$' or "
    "ending with '/'",
    _is_topic_prefix,
)
ENV_NAME = Text(
    "an environment variable name (letters, digits and _, not starting with a digit)",
    lambda text: _ENV_NAME.fullmatch(text) is not None,
)
SECRET = Text("a string", lambda text: True)
PUBLISH_TOPIC = Text(
    "an MQTT topic: non-empty, no wildcards '+' or '#', not starting with '$'; `<avatar>` "
    "stands for the avatar id",
    _is_publish_topic,
)
AVATAR_DOC = "The avatar whose frames this output sends (see `avatars`)."
