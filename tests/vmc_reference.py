"""Golden VMC frames built with python-osc's builders (an independent encoder), for comparing an
encoder's datagrams byte for byte."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder


def message(address: str, *args: tuple[str, object]) -> OscMessage:
    """A message with explicit ``(type tag, value)`` arguments."""
    builder = OscMessageBuilder(address=address)
    for arg_type, value in args:
        builder.add_arg(value, arg_type)  # type: ignore[arg-type]
    return builder.build()


def reference_messages(
    values: np.ndarray, names: Sequence[str], time_s: float, ok_and_time: bool = True
) -> list[OscMessage]:
    """One frame: a ``/VMC/Ext/Blend/Val`` per name, ``/Apply``, then optionally OK and T."""
    out = [
        message("/VMC/Ext/Blend/Val", ("s", name), ("f", float(value)))
        for name, value in zip(names, values, strict=True)
    ]
    out.append(message("/VMC/Ext/Blend/Apply"))
    if ok_and_time:
        out += [message("/VMC/Ext/OK", ("i", 1)), message("/VMC/Ext/T", ("f", time_s))]
    return out


def reference_bundle(messages: list[OscMessage]) -> bytes:
    """``messages`` in one bundle with the "immediately" time tag."""
    builder = OscBundleBuilder(IMMEDIATELY)
    for item in messages:
        builder.add_content(item)
    return builder.build().dgram
