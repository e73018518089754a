"""Emotion names -> VAD: the card's table, published entries, aliases, mixes, errors."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadbridge.model.emotions import (
    ALIASES,
    BASIC_EMOTIONS,
    EMOTIONS,
    UnknownEmotionError,
    emotion_to_vad,
    known_emotion_names,
    mix_to_vad,
)

# The model card's table (docs/references.md, "Model card"), typed out independently.
CARD = {
    "neutral": (0.0, 0.0, 0.0),
    "happiness": (0.8, 0.6, 0.5),
    "surprise": (0.3, 0.9, 0.2),
    "sadness": (-0.8, -0.4, -0.3),
    "anger": (-0.7, 0.8, 0.7),
    "disgust": (-0.6, 0.3, 0.4),
    "fear": (-0.7, 0.8, -0.3),
    "contempt": (-0.4, 0.3, 0.8),
}

GOEMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride",
    "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
DISTILROBERTA_LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")

DOC = Path(__file__).resolve().parents[1] / "docs" / "emotions.md"


def vad(values: tuple[float, float, float]) -> np.ndarray:
    return np.array(values, dtype=np.float32)


# --- the table ------------------------------------------------------------------------------


def test_basic_emotions_are_exactly_the_card_table() -> None:
    assert dict(BASIC_EMOTIONS) == CARD


@pytest.mark.parametrize("name", sorted(CARD))
def test_basic_emotion_vad_is_the_card_value_as_float32(name: str) -> None:
    result = emotion_to_vad(name)
    assert result.shape == (3,)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, vad(CARD[name]))


def test_table_has_at_least_38_canonical_entries_with_sources() -> None:
    assert len(EMOTIONS) >= 38
    for name, entry in EMOTIONS.items():
        assert re.fullmatch(r"model card|RM77.*|ALMA05.*|R80 \(\d+ deg\)", entry.source), name
        assert all(-1.0 <= x <= 1.0 for x in entry.vad), name
    published = [name for name, entry in EMOTIONS.items() if entry.source != "model card"]
    assert len(published) >= 30


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("interested", (0.64, 0.51, 0.17)),  # RM77 #8
        ("untroubled", (0.79, -0.01, 0.33)),  # RM77 #60
        ("discouraged", (-0.61, -0.15, -0.29)),  # RM77 #150
        ("joy", (0.76, 0.48, 0.35)),  # RM77 as reproduced
        ("boredom", (-0.65, -0.62, -0.33)),
        ("fears_confirmed", (-0.5, -0.3, -0.7)),  # ALMA05
        ("relief", (0.2, -0.3, 0.4)),
        ("remorse", (-0.3, 0.1, -0.6)),
    ],
)
def test_published_entries_keep_their_published_values(
    name: str, expected: tuple[float, float, float]
) -> None:
    assert EMOTIONS[name].vad == expected
    np.testing.assert_array_equal(emotion_to_vad(name), vad(expected))


def test_basic_emotions_win_over_published_values_for_the_same_word() -> None:
    # RM77 rates happy/angry/sad/fearful/surprised and ALMA05 rates anger/fear; the card wins.
    for word, basic in [("happy", "happiness"), ("angry", "anger"), ("sad", "sadness"),
                        ("fearful", "fear"), ("surprised", "surprise")]:  # fmt: skip
        assert word not in EMOTIONS
        np.testing.assert_array_equal(emotion_to_vad(word), vad(CARD[basic]))


def test_every_alias_points_at_a_canonical_entry_and_shadows_none() -> None:
    assert len(ALIASES) >= 30
    for alias, target in ALIASES.items():
        assert target in EMOTIONS, alias
        assert alias not in EMOTIONS, alias


# --- names and aliases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("happy", "happiness"), ("joyful", "joy"), ("angry", "anger"), ("mad", "anger"),
        ("sad", "sadness"), ("scared", "fear"), ("afraid", "fear"), ("fearful", "fear"),
        ("surprised", "surprise"), ("shocked", "surprise"), ("disgusted", "disgust"),
        ("contemptuous", "contempt"), ("calm", "relaxation"), ("relaxed", "relaxation"),
        ("bored", "boredom"), ("love", "in_love"), ("excited", "happiness"),
    ],
)  # fmt: skip
def test_common_words_resolve_to_their_entry(alias: str, target: str) -> None:
    assert ALIASES[alias] == target
    np.testing.assert_array_equal(emotion_to_vad(alias), vad(EMOTIONS[target].vad))


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("  HAPPINESS\t", "happiness"),
        ("Happy", "happiness"),
        ("in love", "in_love"),
        ("In-Love", "in_love"),
        ("IN__LOVE", "in_love"),
        ("fears-confirmed", "fears_confirmed"),
        ("Happy For", "happy_for"),
    ],
)
def test_names_ignore_case_whitespace_and_separator_style(spelling: str, canonical: str) -> None:
    np.testing.assert_array_equal(emotion_to_vad(spelling), vad(EMOTIONS[canonical].vad))


@pytest.mark.parametrize("label", sorted(set(GOEMOTIONS_LABELS + DISTILROBERTA_LABELS)))
def test_every_classifier_label_resolves_to_a_table_entry(label: str) -> None:
    target = label if label in EMOTIONS else ALIASES[label]
    np.testing.assert_array_equal(emotion_to_vad(label), vad(EMOTIONS[target].vad))


def test_goemotions_has_28_labels_all_known() -> None:
    assert len(set(GOEMOTIONS_LABELS)) == 28
    assert set(GOEMOTIONS_LABELS) <= set(known_emotion_names())


def test_known_names_are_sorted_unique_and_cover_entries_and_aliases() -> None:
    names = known_emotion_names()
    assert names == sorted(set(names))
    assert set(names) == set(EMOTIONS) | set(ALIASES)
    for name in names:
        emotion_to_vad(name)


def test_known_names_returns_a_fresh_list() -> None:
    known_emotion_names().clear()
    assert "happiness" in known_emotion_names()


def test_result_is_a_fresh_array() -> None:
    first = emotion_to_vad("happiness")
    first[:] = 9.0
    np.testing.assert_array_equal(emotion_to_vad("happiness"), vad(CARD["happiness"]))


# --- mixes ----------------------------------------------------------------------------------


def test_plus_mix_is_the_equal_weight_mean() -> None:
    expected = (np.array(CARD["happiness"]) + np.array(CARD["surprise"])) / 2
    np.testing.assert_allclose(emotion_to_vad("happiness+surprise"), expected, atol=1e-7)


def test_weighted_mix_is_the_weighted_mean() -> None:
    expected = 0.7 * np.array(CARD["happiness"]) + 0.3 * np.array(CARD["surprise"])
    result = emotion_to_vad("happiness:0.7+surprise:0.3")
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-7)


def test_mix_weights_are_normalised_to_sum_one() -> None:
    np.testing.assert_array_equal(
        emotion_to_vad("happiness:7+surprise:3"), emotion_to_vad("happiness:0.7+surprise:0.3")
    )
    np.testing.assert_array_equal(emotion_to_vad("anger:5"), vad(CARD["anger"]))


def test_mix_part_without_weight_weighs_one() -> None:
    np.testing.assert_array_equal(
        emotion_to_vad("happiness+surprise:3"), emotion_to_vad("happiness:0.25+surprise:0.75")
    )


def test_mix_accepts_spaces_aliases_and_zero_weight_parts() -> None:
    np.testing.assert_array_equal(
        emotion_to_vad(" Happy : 0.7 + SURPRISED : 0.3 "),
        emotion_to_vad("happiness:0.7+surprise:0.3"),
    )
    np.testing.assert_array_equal(emotion_to_vad("fear:0+sad:1"), vad(CARD["sadness"]))


def test_mix_of_opposites_can_cancel_to_neutral() -> None:
    np.testing.assert_allclose(emotion_to_vad("happiness+sadness"), [0.0, 0.1, 0.1], atol=1e-7)


def test_mix_to_vad_is_the_score_weighted_mean() -> None:
    scores = {"joy": 0.91, "surprise": 0.05, "neutral": 0.04}
    expected = (0.91 * np.array(EMOTIONS["joy"].vad) + 0.05 * np.array(CARD["surprise"])) / 1.0
    result = mix_to_vad(scores)
    assert result.shape == (3,)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_mix_to_vad_normalises_scores_and_accepts_numpy_numbers() -> None:
    scores: dict[str, Any] = {"Anger": np.float32(2.0), "fear": 2}
    np.testing.assert_allclose(
        mix_to_vad(scores),
        (np.array(CARD["anger"]) + np.array(CARD["fear"])) / 2,
        atol=1e-7,
    )


def test_mix_to_vad_matches_the_string_form() -> None:
    np.testing.assert_array_equal(
        mix_to_vad({"happiness": 0.7, "surprise": 0.3}),
        emotion_to_vad("happiness:0.7+surprise:0.3"),
    )


# --- intensity ------------------------------------------------------------------------------


def test_intensity_zero_is_neutral() -> None:
    np.testing.assert_array_equal(emotion_to_vad("anger", intensity=0.0), np.zeros(3))


def test_intensity_half_is_halfway_from_neutral() -> None:
    np.testing.assert_allclose(
        emotion_to_vad("happiness", intensity=0.5), [0.4, 0.3, 0.25], atol=1e-7
    )


def test_intensity_scales_a_mix() -> None:
    np.testing.assert_allclose(
        emotion_to_vad("happiness:0.7+surprise:0.3", intensity=0.5),
        0.5 * emotion_to_vad("happiness:0.7+surprise:0.3"),
        atol=1e-7,
    )


@pytest.mark.parametrize("intensity", [-0.01, 1.01, math.nan, math.inf, -math.inf, True, "0.5"])
def test_intensity_outside_unit_interval_or_not_a_number_is_rejected(intensity: object) -> None:
    with pytest.raises(ValueError, match="intensity"):
        emotion_to_vad("happiness", intensity=intensity)  # type: ignore[arg-type]


# --- errors ---------------------------------------------------------------------------------


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownEmotionError) as info:
        emotion_to_vad(" Hapiness ")
    assert isinstance(info.value, ValueError)
    assert info.value.name == "Hapiness"
    assert info.value.close_matches[0] == "happiness"
    # bridge/inputs/parse.py classifies errors by this prefix.
    assert str(info.value).startswith("unknown emotion 'Hapiness' (closest known names: happiness")


def test_unknown_name_inside_a_mix_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown emotion 'suprise'.*surprise"):
        emotion_to_vad("happiness+suprise")


def test_unknown_name_without_close_match_points_to_the_list() -> None:
    with pytest.raises(ValueError) as info:
        emotion_to_vad("qqqqqqqq")
    assert str(info.value) == (
        "unknown emotion 'qqqqqqqq' "
        "(no close match; `vadbridge infer --list-emotions` lists the known names)"
    )


def test_unknown_name_with_close_matches_also_points_to_the_docs() -> None:
    with pytest.raises(UnknownEmotionError) as info:
        emotion_to_vad("suprise")
    assert "surprise" in info.value.close_matches
    assert str(info.value).startswith("unknown emotion 'suprise' (closest known names: surprise")
    assert str(info.value).endswith("; `vadbridge infer --list-emotions` lists the known names)")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "empty emotion name"),
        ("   ", "empty emotion name"),
        ("+", "missing emotion name"),
        ("happiness+", "missing emotion name"),
        ("happiness++surprise", "missing emotion name"),
        (":0.5", "missing emotion name"),
        ("happiness:", "missing weight"),
        ("a::b", "more than one ':'"),
        ("happiness:0.5:0.5", "more than one ':'"),
        ("happiness:abc", "not a number: 'abc'"),
        ("happiness:-0.5", "finite and >= 0"),
        ("happiness:nan", "finite and >= 0"),
        ("happiness:inf", "finite and >= 0"),
        ("happiness:0", "positive sum"),
        ("happiness:0+surprise:0", "positive sum"),
        ("happiness:1e308+surprise:1e308", "overflow"),
    ],
)
def test_malformed_names_are_rejected_with_a_reason(spec: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        emotion_to_vad(spec)


@pytest.mark.parametrize("name", [5, None, b"happiness"])
def test_non_string_name_is_rejected(name: object) -> None:
    with pytest.raises(ValueError, match="emotion name must be a str"):
        emotion_to_vad(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ({}, "empty emotion mix"),
        ({"joy": -0.1}, "finite and >= 0"),
        ({"joy": math.nan}, "finite and >= 0"),
        ({"joy": math.inf}, "finite and >= 0"),
        ({"joy": "0.9"}, "must be a number"),
        ({"joy": True}, "must be a number"),
        ({"joy": 0.0, "fear": 0.0}, "positive sum"),
        ({"jooy": 1.0}, "unknown emotion 'jooy'"),
        ({"": 1.0}, "empty emotion name"),
        ({3: 1.0}, "must be a str"),
    ],
)
def test_mix_to_vad_rejects_bad_input_with_a_reason(weights: object, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        mix_to_vad(weights)  # type: ignore[arg-type]


# --- documentation --------------------------------------------------------------------------


def test_doc_lists_every_entry_with_its_value_and_every_alias() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, entry in EMOTIONS.items():
        row = re.search(rf"^\| `{name}` \|([^|]*)\|([^|]*)\|([^|]*)\|", text, re.MULTILINE)
        assert row is not None, name
        assert tuple(float(cell) for cell in row.groups()) == entry.vad, name
    for alias, target in ALIASES.items():
        assert re.search(rf"`{alias}` *→ *`{target}`", text), alias
