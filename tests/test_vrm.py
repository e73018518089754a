"""VRM presets from VAD, and the VMC encoder that sends them: golden bytes vs python-osc."""

from __future__ import annotations

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket
from vmc_reference import reference_bundle, reference_messages

from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, upper_camel
from vadbridge.model.emotions import emotion_to_vad
from vadbridge.outputs.vmc import MAX_LAN_PAYLOAD
from vadbridge.outputs.vrm import (
    PROTOTYPE_MIX,
    PROTOTYPE_VAD,
    VRM0_PRESET_NAMES,
    VRM1_PRESET_NAMES,
    VrmPresets,
    VrmVmcEncoder,
    preset_weights,
)

TIME_S = 3.25
PERFECT_SYNC = [upper_camel(name) for name in ARKIT_NAMES]
JOY, ANGRY, SORROW, FUN, SURPRISED = range(5)


def weights() -> np.ndarray:
    values = np.random.default_rng(9).random(52, dtype=np.float32)
    values[5] = 0.0
    return values


def presets() -> np.ndarray:
    return np.array([0.5, 0.0, 0.125, 0.25, 1.0], dtype=np.float32)


def reference(names: list[str], values: np.ndarray, ok_and_time: bool = True) -> list[OscMessage]:
    return reference_messages(values, names, TIME_S, ok_and_time)


def decoded(datagrams: object) -> list[tuple[str, list[object]]]:
    return [(m.message.address, list(m.message.params))
            for d in datagrams for m in OscPacket(bytes(d)).messages]  # type: ignore[attr-defined]


def frame_with(vad: tuple[float, float, float] | np.ndarray,
               frame_weights: np.ndarray | None = None, time_s: float = TIME_S) -> Frame:
    return Frame(weights() if frame_weights is None else frame_weights, 1, time_s,
                 np.asarray(vad, dtype=np.float32))


def sent_presets(encoder: VrmVmcEncoder, frame: Frame) -> dict[str, float]:
    names = set(encoder.preset_names)
    return {params[0]: params[1] for address, params in decoded(  # type: ignore[misc]
        encoder.encode(frame)) if params and params[0] in names}


# ---------------------------------------------------------------- the VAD -> preset rule


@pytest.mark.parametrize(("emotion", "preset"), [
    ("happiness", JOY), ("anger", ANGRY), ("sadness", SORROW), ("relaxed", FUN),
    ("surprise", SURPRISED),
])
def test_each_basic_emotion_lights_its_own_preset(emotion: str, preset: int) -> None:
    values = preset_weights(emotion_to_vad(emotion))
    assert values[preset] >= 0.9
    assert np.delete(values, preset).max() <= 0.1


def test_neutral_gives_all_zeros_and_near_neutral_almost_zero() -> None:
    assert preset_weights(np.zeros(3)).tolist() == [0.0] * 5
    assert preset_weights(emotion_to_vad("anger") * 1e-4).max() < 1e-3


def test_strength_grows_with_the_distance_from_neutral() -> None:
    joy = [float(preset_weights(emotion_to_vad("happiness", k))[JOY]) for k in (0.25, 0.5, 1.0)]
    assert joy[0] < joy[1] < joy[2]
    assert joy[1] == pytest.approx(joy[2] / 2, rel=0.05)


def test_fear_borrows_surprised_and_sorrow_not_angry() -> None:
    values = preset_weights(emotion_to_vad("fear"))
    assert values[SURPRISED] == pytest.approx(0.6, abs=0.05)
    assert values[SORROW] == pytest.approx(0.4, abs=0.05)
    assert values[ANGRY] < 0.05


def test_presets_stay_in_0_1_and_sum_to_at_most_one_over_the_whole_cube() -> None:
    axis = np.linspace(-1.0, 1.0, 21)
    grid = np.stack(np.meshgrid(axis, axis, axis), axis=-1).reshape(-1, 3)
    values = preset_weights(grid)
    assert values.shape == (21**3, 5) and values.dtype == np.float32
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert values.sum(axis=1).max() <= 1.0 + 1e-6


def test_batch_and_single_rows_agree() -> None:
    """A 3-row and a 1-row matmul may round differently in the last bit (BLAS kernels differ
    by batch size and CPU): presets of order 1 in float32 agree to a few ulps, 1e-6."""
    vads = np.array([emotion_to_vad(name) for name in ("happiness", "sadness", "contempt")])
    batch = preset_weights(vads)
    np.testing.assert_allclose(batch[1], preset_weights(vads[1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros(2), np.zeros((2, 4)), np.array([0.1, np.nan, 0.0])])
def test_bad_vad_is_rejected(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="VAD"):
        preset_weights(bad)


# ---------------------------------------------------------------- the VMC encoder: golden bytes


def test_arkit_and_vrm0_presets_share_one_bundle_before_a_single_apply() -> None:
    encoder = VrmVmcEncoder("vrm0")
    sent = [bytes(d) for d in encoder.encode_values(weights(), presets(), TIME_S)]
    values = np.concatenate([weights(), presets()])
    assert sent == [reference_bundle(reference(PERFECT_SYNC + list(VRM0_PRESET_NAMES), values))]


def test_vrm1_names_and_arkit_naming_are_selectable() -> None:
    encoder = VrmVmcEncoder("vrm1", naming="arkit",
                            send_ok_and_time=False)
    sent = [bytes(d) for d in encoder.encode_values(weights(), presets(), TIME_S)]
    values = np.concatenate([weights(), presets()])
    assert sent == [reference_bundle(reference(list(ARKIT_NAMES) + list(VRM1_PRESET_NAMES), values,
                                               ok_and_time=False))]


def blink_of(frame_weights: np.ndarray) -> float:
    """What the Blink preset carries: the mean of eyeBlinkLeft/Right."""
    left, right = ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")
    return 0.5 * (float(frame_weights[left]) + float(frame_weights[right]))


def test_presets_and_blink_alone_when_arkit_is_off() -> None:
    encoder = VrmVmcEncoder("vrm0", arkit=False)
    sent = [bytes(d) for d in encoder.encode_values(weights(), presets(), TIME_S)]
    values = np.append(presets(), np.float32(blink_of(weights())))
    assert 0.0 < values[-1] < 1.0 and values[-1] != weights()[0]  # a mean, not one eye
    assert sent == [reference_bundle(reference([*VRM0_PRESET_NAMES, "Blink"], values))]


@pytest.mark.parametrize(("bundle", "split"), [(False, False), (True, True)])
def test_vrm1_blink_without_arkit_unbundled_and_split(bundle: bool, split: bool) -> None:
    encoder = VrmVmcEncoder("vrm1", arkit=False,
                            bundle=bundle, split=split)
    datagrams = encoder.encode_values(weights(), presets(), TIME_S)
    values = np.append(presets(), np.float32(blink_of(weights())))
    expected = reference([*VRM1_PRESET_NAMES, "blink"], values)
    if split:
        assert decoded(datagrams) == [(m.address, list(m.params)) for m in expected]
        assert "/VMC/Ext/Blend/Apply" not in [a for a, _ in decoded(datagrams[:1])]
    else:
        assert [bytes(d) for d in datagrams] == [m.dgram for m in expected]


@pytest.mark.parametrize("kind", ["vrm0", "vrm1"])
def test_no_blink_preset_alongside_arkit_shapes(kind: VrmPresets) -> None:
    # The avatar blinks through EyeBlinkLeft/Right then; a Blink on top would close it twice.
    encoder = VrmVmcEncoder(kind)
    names = [params[0] for address, params in decoded(encoder.encode(frame_with((0, 0, 0))))
             if address == "/VMC/Ext/Blend/Val"]
    assert names == PERFECT_SYNC + list(encoder.preset_names) == list(encoder.names)


def test_procedural_blinks_reach_a_presets_only_avatar_and_neutral_opens_the_eyes() -> None:
    encoder = VrmVmcEncoder("vrm0", arkit=False)

    happy = emotion_to_vad("happiness")

    def sent(frame_weights: np.ndarray, vad: np.ndarray = happy) -> dict[str, float]:
        datagrams = encoder.encode(frame_with(vad, frame_weights))
        return {params[0]: params[1] for _, params in decoded(  # type: ignore[misc]
            datagrams) if params and isinstance(params[0], str)}

    frame = weights()
    left, right = ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")
    frame[[left, right]] = 0.75  # mid-blink, symmetric as the animator leaves it
    mid_blink = sent(frame)
    assert mid_blink["Blink"] == 0.75 and mid_blink["Joy"] > 0.9
    frame[[left, right]] = 0.0  # eyes open again: the preset follows
    assert sent(frame)["Blink"] == 0.0
    neutral = sent(np.zeros(52, np.float32), np.zeros(3, np.float32))
    assert neutral == {name: 0.0 for name in [*VRM0_PRESET_NAMES, "Blink"]}


def test_unbundled_frames_are_one_python_osc_message_per_datagram() -> None:
    encoder = VrmVmcEncoder("vrm0", bundle=False)
    sent = [bytes(d) for d in encoder.encode_values(weights(), presets(), TIME_S)]
    values = np.concatenate([weights(), presets()])
    assert sent == [m.dgram for m in reference(PERFECT_SYNC + list(VRM0_PRESET_NAMES), values)]


def test_split_frames_fit_the_lan_mtu_with_apply_last() -> None:
    encoder = VrmVmcEncoder("vrm0", split=True)
    datagrams = encoder.encode_values(weights(), presets(), TIME_S)
    assert len(datagrams) == 2 and max(encoder.datagram_sizes) <= MAX_LAN_PAYLOAD
    values = np.concatenate([weights(), presets()])
    expected = reference(PERFECT_SYNC + list(VRM0_PRESET_NAMES), values)
    assert decoded(datagrams) == [(m.address, list(m.params)) for m in expected]
    assert "/VMC/Ext/Blend/Apply" not in [a for a, _ in decoded(datagrams[:1])]


# ---------------------------------------------------------------- the VMC encoder: the frame's VAD


def test_presets_follow_the_frames_vad() -> None:
    encoder = VrmVmcEncoder("vrm0")
    assert sent_presets(encoder, frame_with(emotion_to_vad("happiness")))["Joy"] == pytest.approx(
        float(preset_weights(emotion_to_vad("happiness"))[JOY]))
    values = sent_presets(encoder, frame_with(emotion_to_vad("sadness")))
    assert values["Sorrow"] == pytest.approx(1.0) and values["Joy"] < 1e-6


def test_a_neutral_frame_sends_zero_presets() -> None:
    """The daemon's neutral frame (shutdown, removed output) has zero weights and zero VAD."""
    encoder = VrmVmcEncoder("vrm1")
    assert sent_presets(encoder, frame_with(emotion_to_vad("anger")))["angry"] > 0.9
    neutral = Frame(np.zeros(52, np.float32), 2, TIME_S)
    assert set(sent_presets(encoder, neutral).values()) == {0.0}


def test_a_converged_face_reuses_the_presets_and_a_moved_vad_recomputes_them() -> None:
    encoder = VrmVmcEncoder("vrm0")
    first = sent_presets(encoder, frame_with(emotion_to_vad("happiness"), time_s=0.0))
    assert sent_presets(encoder, frame_with(emotion_to_vad("happiness"), time_s=1 / 60)) == first
    moved = sent_presets(encoder, frame_with(emotion_to_vad("sadness"), time_s=2 / 60))
    assert moved["Sorrow"] == pytest.approx(1.0, abs=0.05) and moved["Joy"] < 1e-6
    back = sent_presets(encoder, frame_with(emotion_to_vad("happiness"), time_s=3 / 60))
    assert back == first  # a VAD seen before: the same presets


def test_float32_rule_matches_a_float64_evaluation_of_the_same_rule() -> None:
    rng = np.random.default_rng(3)
    vads = rng.uniform(-1.0, 1.0, size=(500, 3))
    unit = PROTOTYPE_VAD.astype(np.float64)
    norm = np.linalg.norm(unit, axis=1)
    rows_norm = np.linalg.norm(vads, axis=1)
    cosine = (vads @ (unit / norm[:, None]).T) / rows_norm[:, None]
    shares = np.exp(25.0 * (cosine - cosine.max(axis=1, keepdims=True)))
    shares /= shares.sum(axis=1, keepdims=True)
    shares *= np.minimum(rows_norm[:, None] / norm, 1.0)
    expected = np.clip(shares @ PROTOTYPE_MIX.astype(np.float64), 0.0, 1.0)
    np.testing.assert_allclose(preset_weights(vads), expected, atol=2e-5)


def test_bad_encoder_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="presets"):
        VrmVmcEncoder("vrm2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bundle=True"):
        VrmVmcEncoder("vrm0", bundle=False, split=True)
    with pytest.raises(ValueError, match="shape"):
        VrmVmcEncoder("vrm0").encode(Frame(np.zeros(51, np.float32)))
