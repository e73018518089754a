"""The MQTT broker connection, shared by the MQTT input and the MQTT output.

``MqttConnectionConfig`` holds the connection keys (address, protocol, client id, credentials,
TLS, keep-alive, reconnect backoff) and their cross-field checks once; ``MqttInputConfig`` and
``MqttOutputConfig`` subclass it and add their topics. A subclass redeclares a connection key
(with one of the ``mqtt_*`` helpers below) only to say what it means for that role; what the key
accepts and its default stay defined here. Client behaviour cited is from
docs/references.md, "MQTT".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from vadbridge.config.errors import Invalid
from vadbridge.config.specs import (
    Choice,
    Context,
    FilePath,
    Int,
    Number,
    Optional,
    Section,
    setting,
)
from vadbridge.config.values import ENV_NAME, HOST, MQTT_STRING, PORT, SECRET, read_secret_env

__all__ = [
    "MqttConnectionConfig",
    "TlsConfig",
    "mqtt_client_id",
    "mqtt_keepalive",
    "mqtt_reconnect_max",
]


MQTT_PROTOCOL_NAMES: Final = {4: "3.1.1", 5: "5"}
"""The config's ``protocol`` values (the CONNECT packet's protocol level) and their names."""
_PROTOCOL_NOTES: Final[dict[str | int, str]] = {
    level: f"MQTT {name}" for level, name in MQTT_PROTOCOL_NAMES.items()
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """TLS for the MQTT connection. An empty mapping (`tls: {}`) = TLS with the system CAs."""

    ca_file: str | None = setting(
        None, Optional(FilePath("CA certificate (PEM)")),
        "CA bundle that signed the broker's certificate; null = the system's CAs.")
    cert_file: str | None = setting(
        None, Optional(FilePath("client certificate (PEM)")),
        "Client certificate, for brokers that require one; may also hold the key.")
    key_file: str | None = setting(
        None, Optional(FilePath("client private key (PEM)")),
        "Private key of cert_file, when it is a separate file.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if values.get("key_file") is not None and values.get("cert_file") is None:
            raise Invalid("cert_file to be set when key_file is", "no cert_file", ("key_file",))


_MAX_KEEPALIVE_S = 65535  # the protocol's keep-alive is a two-byte count of seconds
# The first reconnect delay, unless the cap (reconnect_max_s) is lower.
_RECONNECT_INITIAL_S = 0.5


def mqtt_client_id(must_differ: str) -> Any:
    """The ``client_id`` key; ``must_differ`` completes its doc's "Must differ ..." sentence."""
    return setting(
        None, Optional(MQTT_STRING),
        f"MQTT client identifier; null = a random one. Must differ {must_differ}.")


def mqtt_keepalive(doc: str) -> Any:
    """The ``keepalive_s`` key (seconds)."""
    return setting(30, Int(1, _MAX_KEEPALIVE_S), doc)


def mqtt_reconnect_max(while_away: str) -> Any:
    """The ``reconnect_max_s`` key; ``while_away`` ends the sentence with what happens meanwhile
    (there is no automatic reconnect in aiomqtt: the input and the output each run a backoff)."""
    return setting(
        5.0, Number(0.0, low_open=True),
        f"Cap of the jittered exponential reconnect backoff{while_away}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConnectionConfig:
    """A connection to an MQTT broker (a base of the MQTT input and output, not a type itself)."""

    # The reference lists these keys first and then a subclass's own (its topics), before the
    # rest of the connection: where to connect, what to exchange, then how (see docs._doc_fields).
    doc_leading_keys: ClassVar[tuple[str, ...]] = ("host", "port")

    host: str = setting("127.0.0.1", HOST, "Broker host name or address.")
    port: int = setting(1883, PORT, "Broker port (1883 plain, usually 8883 with TLS).")
    protocol: int = setting(
        5, Choice(*MQTT_PROTOCOL_NAMES, notes=_PROTOCOL_NOTES), "MQTT protocol version.")
    client_id: str | None = mqtt_client_id("from every other client's")
    username: str | None = setting(None, Optional(MQTT_STRING), "Broker user name; null = none.")
    password: str | None = setting(
        None, Optional(SECRET),
        "Broker password (needs `username`). Prefer `password_env`; never logged.", repr=False)
    password_env: str | None = setting(
        None, Optional(ENV_NAME),
        "Read the password from this environment variable at load; unset variable = error.")
    tls: TlsConfig | None = setting(  # noqa: RUF009 (setting() is our dataclasses.field)
        None, Optional(Section(TlsConfig)), "TLS settings; null = plain TCP.")
    keepalive_s: int = mqtt_keepalive("MQTT keep-alive interval.")
    reconnect_max_s: float = mqtt_reconnect_max(".")

    @property
    def reconnect_initial_s(self) -> float:
        """The first reconnect delay of the backoff, which then doubles (with jitter) up to
        ``reconnect_max_s``: 0.5 s, or ``reconnect_max_s`` when the config caps it lower."""
        return min(_RECONNECT_INITIAL_S, self.reconnect_max_s)

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        """``password_env`` read into ``password``; a password needs a user name."""
        read_secret_env(values, ctx, env_key="password_env", value_key="password")
        if values.get("password") is not None and values.get("username") is None:
            # paho only sends a password along with a user name: it would be dropped silently.
            where = "password_env" if values.get("password_env") is not None else "password"
            raise Invalid("username to be set when a password is", "no username", (where,))
