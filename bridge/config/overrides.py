"""The command-line flags that override a loaded config: ``--fps`` and the address flags
(``--web`` also turns the control panel on).

A bad flag value is a ``ConfigError`` like a bad key in the file, with ``<command line>`` for
the file and the flag for the key path; its ranges are the schema's own (``FRAME_RATE``,
``PORT_RANGE``), so a flag accepts exactly what the key it overrides accepts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vadbridge.config.errors import ConfigError, Invalid, describe
from vadbridge.config.inputs import MqttInputConfig, OscInputConfig
from vadbridge.config.outputs import VmcOutputConfig
from vadbridge.config.schema import BridgeConfig
from vadbridge.config.specs import Context
from vadbridge.config.values import FRAME_RATE, PORT, PORT_RANGE, is_port

__all__ = ["apply_overrides", "parse_host_port"]

_COMMAND_LINE = "<command line>"


def parse_host_port(text: str, flag: str = "HOST:PORT") -> tuple[str, int]:
    """``host:port`` or ``[ipv6]:port`` → (host, port); errors name the ``flag``."""
    low, high = PORT_RANGE
    expected = f"HOST:PORT (e.g. 127.0.0.1:9000 or [::1]:9000) with a port {low}..{high}"
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:  # a bare IPv6 address is ambiguous: which colon starts the port?
        raise ConfigError(_COMMAND_LINE, flag, None, expected + "; bracket IPv6 addresses",
                          describe(text))
    if not sep or not host or not port_text.isdigit() or any(c.isspace() for c in host):
        raise ConfigError(_COMMAND_LINE, flag, None, expected, describe(text))
    port = int(port_text)
    if not is_port(port):
        raise ConfigError(_COMMAND_LINE, flag, None, expected, describe(text))
    return host, port


def apply_overrides(
    config: BridgeConfig,
    *,
    fps: int | None = None,
    osc_in: str | tuple[str, int] | None = None,
    vmc_out: str | tuple[str, int] | None = None,
    mqtt: str | tuple[str, int] | None = None,
    web: str | tuple[str, int] | None = None,
) -> BridgeConfig:
    """The CLI's ``--fps``, ``--osc-in``, ``--vmc-out``, ``--mqtt`` and ``--web`` applied to
    ``config``.

    An address flag changes the host and port of the first input/output of its type, or adds
    one with defaults when there is none; ``--web`` sets the control panel's address and turns
    it on. Strings are parsed with ``parse_host_port``.
    """
    if fps is not None:
        _check_frame_rate(fps)
        config = dataclasses.replace(config, frame_rate=fps)
    if osc_in is not None:
        address = _address(osc_in, "--osc-in")
        config = dataclasses.replace(
            config, inputs=_retarget(config.inputs, OscInputConfig, address))
    if mqtt is not None:
        address = _address(mqtt, "--mqtt")
        config = dataclasses.replace(
            config, inputs=_retarget(config.inputs, MqttInputConfig, address))
    if vmc_out is not None:
        address = _address(vmc_out, "--vmc-out")
        config = dataclasses.replace(
            config, outputs=_retarget(config.outputs, VmcOutputConfig, address))
    if web is not None:
        host, port = _address(web, "--web")
        config = dataclasses.replace(
            config, web=dataclasses.replace(config.web, enabled=True, host=host, port=port))
    return config


# A flag has no config file: nothing relative to resolve, no secrets to read.
_FLAG_CONTEXT = Context(base_dir=Path(), environ={})


def _check_frame_rate(fps: object) -> None:
    try:
        FRAME_RATE.check(fps, _FLAG_CONTEXT)
    except Invalid as invalid:
        raise ConfigError(_COMMAND_LINE, "--fps", None, invalid.expected, invalid.got) from None


def _address(value: str | tuple[str, int], flag: str) -> tuple[str, int]:
    if isinstance(value, str):
        return parse_host_port(value, flag)
    host, port = value
    if not isinstance(host, str) or not host or not is_port(port):
        raise ConfigError(_COMMAND_LINE, flag, None, f"a host and {PORT.expected}",
                          f"{describe(host)} {describe(port)}")
    return host, port


def _retarget(items: tuple[Any, ...], cls: Any, address: tuple[str, int]) -> tuple[Any, ...]:
    host, port = address
    for index, item in enumerate(items):
        if isinstance(item, cls):
            moved = dataclasses.replace(item, host=host, port=port)
            return (*items[:index], moved, *items[index + 1:])
    return (*items, cls(host=host, port=port))
