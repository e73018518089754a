"""The control panel's section, ``web:`` (issue 15): where it listens, who may use it, its limits.

The panel is off unless ``enabled`` (or ``vadbridge run --web HOST:PORT``). On a loopback host
the page needs no token; on any other one every WebSocket needs one: ``token_env`` (read at
load, like MQTT's ``password_env``) or, when none is configured, a random token the daemon makes
and prints at start (docs/security.md, "Control panel").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from vadbridge.config.specs import Bool, Context, Int, Number, Optional, Text, setting
from vadbridge.config.values import ENV_NAME, HOST, PORT, is_loopback, read_secret_env

__all__ = ["TOKEN_RULE", "WebConfig", "is_token"]

_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")
TOKEN_RULE: Final = "16-256 characters of A-Z a-z 0-9 . _ ~ - (safe in a URL unescaped)"


def is_token(text: str) -> bool:
    """A token long enough to guess at no rate a panel allows, and safe in a URL."""
    return _TOKEN.fullmatch(text) is not None


_TOKEN_TEXT = Text(f"a token: {TOKEN_RULE}", is_token, secret=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    """The control panel: a page to watch, drive and tune the bridge (README, "Control panel")."""

    enabled: bool = setting(False, Bool(), "Serve the control panel; `vadbridge run --web "
                            "HOST:PORT` turns it on too. Needs aiohttp (`pip install "
                            "'vadbridge[web]'`); off, the bridge never imports it.")
    host: str = setting(
        "127.0.0.1", HOST,
        "Address to listen on. On a loopback address the page needs no token; on any other "
        "every connection needs one (`token_env`, or a random token printed at start).")
    port: int = setting(8800, PORT, "TCP port of the page and its WebSocket.")
    token: str | None = setting(
        None, Optional(_TOKEN_TEXT),
        "The token itself (prefer `token_env`); never logged. Set, it is required on any host.",
        repr=False)
    token_env: str | None = setting(
        None, Optional(ENV_NAME),
        "Read the token from this environment variable at load (unset = error); required on "
        "any host. null = none on a loopback host, a random one printed at start on others.")
    max_clients: int = setting(
        32, Int(1, 1024),
        "Pages connected at once; more are refused (HTTP 503, counted `web.clients`).")
    fps: int = setting(
        30, Int(1, 60), "Face updates per second sent to each page (at most the frame rate).")
    max_message_bytes: int = setting(
        4096, Int(256, 65536),
        "Largest message a page may send; a larger one closes its connection (`oversize`).")
    messages_per_s: float = setting(
        100.0, Number(1.0, 10_000.0),
        "Messages per second one connection may send (the pad sends at most 30); excess is "
        "dropped and counted (`web.rate_limit`). Inputs also obey "
        "`limits.rate_limit_per_source` (per sender address).")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        """``token_env`` read into ``token`` (checked like one, never shown)."""
        read_secret_env(values, ctx, env_key="token_env", value_key="token",
                        holds=_TOKEN_TEXT.expected, valid=is_token)

    @property
    def needs_token(self) -> bool:
        """A token guards the panel: one is configured, or the host is not loopback."""
        return self.token is not None or not is_loopback(self.host)
