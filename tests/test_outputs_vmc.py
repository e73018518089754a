"""VMC encoder: golden bytes against python-osc's builders, sizes from docs/references.md
("VMC protocol")."""

from __future__ import annotations

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from vmc_reference import reference_bundle, reference_messages

from vadbridge.core.osc_codec import decode_packet
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.outputs import VmcEncoder

TIME_S = 12.345


def weights() -> np.ndarray:
    rng = np.random.default_rng(5)
    values = rng.random(52, dtype=np.float32)
    values[[3, 17]] = 0.0  # zeros must be sent too
    return values


def perfect_sync(name: str) -> str:
    return name[0].upper() + name[1:]


def as_bytes(datagrams: object) -> list[bytes]:
    return [bytes(d) for d in datagrams]  # type: ignore[attr-defined]


PERFECT_SYNC_NAMES = [perfect_sync(name) for name in ARKIT_NAMES]


def test_default_frame_is_one_bundle_identical_to_python_osc() -> None:
    values = weights()
    sent = as_bytes(VmcEncoder().encode(Frame(values, 1, TIME_S)))
    assert sent == [reference_bundle(reference_messages(values, PERFECT_SYNC_NAMES, TIME_S))]


def test_arkit_naming_sends_lower_camel_case_names() -> None:
    values = weights()
    sent = as_bytes(VmcEncoder(naming="arkit").encode(Frame(values, 1, TIME_S)))
    assert sent == [reference_bundle(reference_messages(values, list(ARKIT_NAMES), TIME_S))]


def test_perfect_sync_names_are_upper_camel_case() -> None:
    (packet,) = VmcEncoder().encode(Frame(weights(), 1, TIME_S))
    names = [args[0] for address, args in decode_packet(packet) if address.endswith("/Val")]
    assert names[:3] == ["BrowDownLeft", "BrowDownRight", "BrowInnerUp"]
    assert "TongueOut" in names and "EyeBlinkLeft" in names


def test_without_ok_and_time_the_bundle_is_the_reference_2524_bytes() -> None:
    values = weights()
    encoder = VmcEncoder(send_ok_and_time=False)
    sent = as_bytes(encoder.encode(Frame(values, 1, TIME_S)))
    assert sent == [reference_bundle(reference_messages(values, PERFECT_SYNC_NAMES, 0, False))]
    assert len(sent[0]) == 2524
    assert encoder.datagram_sizes == (2524,)


def test_with_ok_and_time_the_bundle_is_the_reference_2572_bytes() -> None:
    assert [len(p) for p in VmcEncoder().encode(Frame(weights(), 1, TIME_S))] == [2572]


def test_messages_are_all_values_then_apply_then_ok_then_time() -> None:
    values = weights()
    (packet,) = VmcEncoder().encode(Frame(values, 1, TIME_S))
    decoded = decode_packet(packet)
    assert [address for address, _ in decoded] == ["/VMC/Ext/Blend/Val"] * 52 + [
        "/VMC/Ext/Blend/Apply",
        "/VMC/Ext/OK",
        "/VMC/Ext/T",
    ]
    assert [args[1] for _, args in decoded[:52]] == values.tolist()
    assert decoded[52][1] == ()
    assert decoded[53][1] == (1,)
    assert decoded[54][1] == (pytest.approx(TIME_S, abs=1e-5),)


def test_split_gives_two_lan_sized_bundles_with_apply_in_the_last() -> None:
    values = weights()
    sent = as_bytes(VmcEncoder(split=True).encode(Frame(values, 1, TIME_S)))
    reference = reference_messages(values, PERFECT_SYNC_NAMES, TIME_S)
    assert sent == [reference_bundle(reference[:26]), reference_bundle(reference[26:])]
    assert all(len(packet) < 1472 for packet in sent)
    assert (OscBundle(sent[0]).num_contents, OscBundle(sent[1]).num_contents) == (26, 29)
    first = [address for address, _ in decode_packet(sent[0])]
    last = [address for address, _ in decode_packet(sent[1])]
    assert "/VMC/Ext/Blend/Apply" not in first
    assert last[-3:] == ["/VMC/Ext/Blend/Apply", "/VMC/Ext/OK", "/VMC/Ext/T"]


def test_unbundled_sends_each_message_as_its_own_datagram() -> None:
    values = weights()
    sent = as_bytes(VmcEncoder(bundle=False).encode(Frame(values, 1, TIME_S)))
    assert sent == [m.dgram for m in reference_messages(values, PERFECT_SYNC_NAMES, TIME_S)]
    assert len(sent) == 55


def test_unbundled_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="needs bundle=True"):
        VmcEncoder(bundle=False, split=True)


def test_unknown_naming_is_rejected() -> None:
    with pytest.raises(ValueError, match="naming must be 'perfect_sync' or 'arkit'"):
        VmcEncoder(naming="vrm")  # type: ignore[arg-type]


def test_each_frame_writes_its_own_values_and_time() -> None:
    encoder = VmcEncoder()
    encoder.encode(Frame(np.ones(52, np.float32), 1, 1.0))
    values = weights()
    sent = as_bytes(encoder.encode(Frame(values, 2, 2.5)))
    assert sent == [reference_bundle(reference_messages(values, PERFECT_SYNC_NAMES, 2.5))]


def test_wrong_weight_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape \(52,\)"):
        VmcEncoder().encode(Frame(np.zeros((1, 52), np.float32), 0, 0.0))
