"""What the config's values may be: ports, frame rates, hosts, avatar ids, shards, OSC addresses
and MQTT strings and topics, as facts (``PORT_RANGE``, ``AVATAR_ID_PATTERN``…) and as the specs
built from them, shared by the schema's modules.

Each fact is stated here once; other layers import it from ``vadbridge.config`` instead of
restating it. Each spec's ``expected`` text is both the error message and the reference's
"Accepts" column. The MQTT limits are the protocol's (strings carry a 16-bit byte length; a
published topic has no wildcards), so a bad value fails at load rather than at the broker.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from vadbridge.config.errors import Invalid, describe_kind, lone_surrogate_at
from vadbridge.config.specs import Context, Int, Spec, Text

__all__ = [
    "AVATAR_DOC",
    "AVATAR_ID",
    "AVATAR_ID_PATTERN",
    "AVATAR_ID_RULE",
    "ENV_NAME",
    "FRAME_RATE",
    "FRAME_RATE_RANGE",
    "HOST",
    "LABEL_255",
    "MQTT_MAX_STRING_BYTES",
    "MQTT_STRING",
    "OSC_PREFIX",
    "PORT",
    "PORT_RANGE",
    "PUBLISH_TOPIC",
    "SECRET",
    "TOPIC_PREFIX",
    "Shard",
    "ShardText",
    "is_loopback",
    "is_port",
]

PORT_RANGE: Final = (1, 65535)
"""A TCP/UDP port to bind or send to (0, "any port", is not a configurable address)."""

FRAME_RATE_RANGE: Final = (1, 240)
"""Frames per second the daemon can be asked to send (``frame_rate``, ``--fps``)."""

MQTT_MAX_STRING_BYTES: Final = 65535
"""An MQTT string (topic, client id, user name) carries a two-byte length: at most this many
UTF-8 bytes."""

_AVATAR_ID_CHARS = "A-Za-z0-9_.-"
_AVATAR_ID_MAX_CHARS = 64
AVATAR_ID_PATTERN: Final = re.compile(f"[{_AVATAR_ID_CHARS}]{{1,{_AVATAR_ID_MAX_CHARS}}}")
"""An avatar id, matched with ``fullmatch``: ASCII only, so its length in characters is its
length in bytes (it is spliced into OSC addresses and MQTT topics)."""
AVATAR_ID_RULE: Final = f"1-{_AVATAR_ID_MAX_CHARS} of [{_AVATAR_ID_CHARS}]"
"""``AVATAR_ID_PATTERN`` in words, for error messages."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OSC_FORBIDDEN = set(" #*,?[]{}")


def is_port(value: object) -> TypeGuard[int]:
    """``value`` is an int (not a bool) in ``PORT_RANGE``."""
    low, high = PORT_RANGE
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_loopback(host: str) -> bool:
    """``host`` is ``localhost`` or a loopback address: only this machine can reach a listener
    there. Another host name may resolve to any interface, so it is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    # Room for the longest avatar id, which replaces `<avatar>` when publishing.
    return (0 < size <= MQTT_MAX_STRING_BYTES - _AVATAR_ID_MAX_CHARS and "+" not in text
            and "#" not in text and "\0" not in text and not text.startswith("$"))


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


PORT = Int(*PORT_RANGE)
FRAME_RATE = Int(*FRAME_RATE_RANGE)
AVATAR_ID = Text(
    f"an avatar id: 1-{_AVATAR_ID_MAX_CHARS} characters of {_AVATAR_ID_CHARS} (quote ids that "
    "YAML reads as numbers)",
    lambda text: AVATAR_ID_PATTERN.fullmatch(text) is not None,
)
AVATAR_DOC = "The avatar whose frames this output sends (see `avatars`)."
HOST = Text("a host name or IP address (non-empty, no spaces)", _is_host)
OSC_PREFIX = Text(
    "an OSC address: starts with '/', no trailing '/' or '//', printable ASCII without spaces "
    "or any of #*,?[]{}",
    _is_osc_prefix,
)
LABEL_255 = Text("a non-empty string of at most 255 UTF-8 bytes", _utf8_at_most(255))
MQTT_STRING = Text(f"a non-empty string of at most {MQTT_MAX_STRING_BYTES} UTF-8 bytes",
                   _utf8_at_most(MQTT_MAX_STRING_BYTES))
TOPIC_PREFIX = Text(
    "an MQTT topic prefix: non-empty, no wildcards '+' or '#', not starting with '$' or "
    "ending with '/'",
    _is_topic_prefix,
)


class _EnvName(Text):
    """``password_env``: users paste the password itself here, so a bad value is not shown."""

    def invalid(self, value: object) -> Invalid:
        kind = "a string that is" if isinstance(value, str) else f"{describe_kind(value)},"
        return Invalid(self.expected, f"{kind} not a valid environment variable name (the value "
                       "is not shown: it may be a secret)")


ENV_NAME = _EnvName(
    "an environment variable name (letters, digits and _, not starting with a digit)",
    lambda text: _ENV_NAME.fullmatch(text) is not None, secret=True,
)
SECRET = Text("a string", lambda text: True, secret=True)
_CONVENTIONAL_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def read_secret_env(values: dict[str, Any], ctx: Context, *, env_key: str, value_key: str,
                    holds: str = "UTF-8 text",
                    valid: Callable[[str], bool] = lambda text: True) -> None:
    """Read the environment variable ``values[env_key]`` names into ``values[value_key]``
    (nothing when ``env_key`` is unset): only one of the two keys, a variable that is set,
    and a value that is text and ``valid`` (``holds`` says what it should hold). The value is
    never shown, nor a name that may be a pasted secret (one that is not upper case)."""
    env_name = values.get(env_key)
    if env_name is None:
        return
    if values.get(value_key) is not None:
        raise Invalid(f"only one of {value_key} and {env_key}", "both", (env_key,))
    if env_name not in ctx.environ:
        # Named as given only when it looks like one (upper case): a pasted secret can be a
        # valid name too, and must not be echoed.
        expected = (f"environment variable {env_name} to be set"
                    if _CONVENTIONAL_ENV_NAME.fullmatch(env_name) else
                    "the environment variable it names to be set (the name is not shown: not "
                    "upper case, it may be a pasted secret)")
        raise Invalid(expected, "unset", (env_key,))
    secret = ctx.environ[env_name]
    # A lone surrogate: undecodable bytes in the environment.
    if lone_surrogate_at(secret) is not None or not valid(secret):
        raise Invalid(f"environment variable {env_name} to hold {holds}",
                      "a value that does not (not shown: it is a secret)", (env_key,))
    values[value_key] = secret
PUBLISH_TOPIC = Text(
    "an MQTT topic: non-empty, no wildcards '+' or '#', not starting with '$'; `<avatar>` "
    "stands for the avatar id",
    _is_publish_topic,
)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``k`` of ``n`` (1-based): this instance owns the avatar ids whose stable hash falls
    in its bucket. The hash is CRC-32 of the UTF-8 id, the same on every machine and Python
    version (unlike ``hash()``), so instances started with 1/n … n/n partition the ids exactly."""

    k: int
    n: int

    def owns(self, avatar_id: str) -> bool:
        return zlib.crc32(avatar_id.encode("utf-8")) % self.n == self.k - 1

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


class ShardText(Spec):
    """``"k/n"`` → ``Shard(k, n)`` with 1 <= k <= n."""

    expected = "a shard 'k/n' with 1 <= k <= n (e.g. '2/4')"
    _PATTERN = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")

    def check(self, value: object, ctx: Context) -> object:
        match = self._PATTERN.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise self.invalid(value)
        k, n = int(match.group(1)), int(match.group(2))
        if not 1 <= k <= n:
            raise self.invalid(value)
        return Shard(k, n)
