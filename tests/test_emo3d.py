"""Emo3D rows -> VAD + ARKit: the VAD rule, and the other score encodings the loader accepts,
on a small table written here. The published cell format (numpy ``str()``) is in
test_emo3d_real_format.py, on a fixture typed in the dataset's own layout.

Layout per docs/references.md, "Emo3D dataset", and the dataset card: text, eight intensities,
images and ``blenshape_score_1..4`` holding MediaPipe scores (``_neutral`` first, no tongueOut).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vadbridge.model.arkit import ARKIT_INDEX
from vadbridge.model.emotions import emotion_to_vad, mix_to_vad
from vadbridge.training.data import DatasetError, load_dataset
from vadbridge.training.emo3d import (
    EMOTION_COLUMNS,
    MEDIAPIPE_NAMES,
    emotion_mix_to_vad,
    load_emo3d,
    parse_scores,
)
from vadbridge.training.prototypes import CARD_EMOTION_VAD

# Distinct score per MediaPipe name, so a by-index mapping would be caught.
SCORES = {name: round(0.01 + 0.018 * i, 3) for i, name in enumerate(MEDIAPIPE_NAMES)}


def as_category_records() -> str:
    records = [
        {"index": i, "score": SCORES[n], "display_name": "", "category_name": n}
        for i, n in enumerate(MEDIAPIPE_NAMES)
    ]
    return json.dumps(records)


def as_category_repr() -> str:
    return (
        "["
        + ", ".join(
            f"Category(index={i}, score={SCORES[n]}, display_name='', category_name='{n}')"
            for i, n in enumerate(MEDIAPIPE_NAMES)
        )
        + "]"
    )


def as_score_list() -> str:
    return json.dumps([SCORES[n] for n in MEDIAPIPE_NAMES])


HEADER = [
    "sample_id", "prompt_type", "text_1", "text_2", "text_3", *EMOTION_COLUMNS,
    "img_1", "img_2", "img_3", "img_4",
    "blenshape_score_1", "blenshape_score_2", "blenshape_score_3", "blenshape_score_4",
]  # fmt: skip


def row(intensities: dict[str, float], scores: list[str]) -> list[str]:
    values = [str(intensities.get(e, 0.0)) for e in EMOTION_COLUMNS]
    text = ["A face, with a comma", "x", "y"]
    return ["1", "p1", *text, *values, "a.png", "b.png", "c.png", "d.png", *scores]


def write_fixture(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "emo3d.csv", [
        row({"happiness": 0.6}, [as_category_records(), as_category_repr(), "", "[]"]),
        row({"anger": 0.9, "disgust": 0.6, "neutral": 0.5}, [as_score_list(), "", "", ""]),
        row({"sadness": 1.0}, ["", "", "", ""]),
    ])  # fmt: skip


def test_rows_become_one_sample_per_face_and_empty_cells_are_counted(fixture_file: Path) -> None:
    loaded = load_emo3d(fixture_file)
    assert (loaded.rows, loaded.faces, loaded.skipped_no_face) == (3, 3, 9)
    assert loaded.dataset.blendshapes.shape == (3, 52)


def test_scores_map_to_arkit_by_name(fixture_file: Path) -> None:
    faces = load_emo3d(fixture_file).dataset.blendshapes
    for face in faces:  # all three score encodings agree
        assert face[ARKIT_INDEX["browDownLeft"]] == pytest.approx(SCORES["browDownLeft"])
        assert face[ARKIT_INDEX["noseSneerRight"]] == pytest.approx(SCORES["noseSneerRight"])
        assert face[ARKIT_INDEX["mouthSmileLeft"]] == pytest.approx(SCORES["mouthSmileLeft"])


def test_neutral_score_is_dropped_and_tongue_out_is_zero(fixture_file: Path) -> None:
    faces = load_emo3d(fixture_file).dataset.blendshapes
    assert not faces[:, ARKIT_INDEX["tongueOut"]].any()
    assert not np.isclose(faces, SCORES["_neutral"]).any()


def intensities(**named: float) -> list[float]:
    return [named.get(e, 0.0) for e in EMOTION_COLUMNS]


def card_vad(name: str) -> np.ndarray:
    return np.asarray(CARD_EMOTION_VAD[name])


def test_a_lone_emotion_is_its_full_card_vad_at_any_intensity(fixture_file: Path) -> None:
    vad = load_emo3d(fixture_file).dataset.vad  # row 1: happiness 0.6, nothing else
    np.testing.assert_allclose(vad[0], card_vad("happiness"), atol=1e-6)
    np.testing.assert_allclose(emotion_mix_to_vad(intensities(fear=0.1)), card_vad("fear"))


def test_an_emotion_at_i_with_neutral_one_minus_i_follows_the_card_intensity_rule() -> None:
    for i in (0.1, 0.3, 0.8):
        np.testing.assert_allclose(
            emotion_mix_to_vad(intensities(neutral=1 - i, sadness=i)),
            emotion_to_vad("sadness", i),
            atol=1e-6,
        )


def test_intensities_are_normalised_to_a_distribution_neutral_included() -> None:
    weights = intensities(neutral=0.5, anger=0.9, disgust=0.6)  # sum 2.0
    expected = (0.9 * card_vad("anger") + 0.6 * card_vad("disgust")) / 2.0
    np.testing.assert_allclose(emotion_mix_to_vad(weights), expected, atol=1e-6)
    below_one = intensities(neutral=0.2, happiness=0.5)  # sum 0.7: scaled up, not left short
    np.testing.assert_allclose(
        emotion_mix_to_vad(below_one), 0.5 / 0.7 * card_vad("happiness"), atol=1e-6
    )


def test_a_high_neutral_share_pulls_the_vad_toward_the_origin() -> None:
    mixed = {"happiness": 0.2, "surprise": 0.1, "contempt": 0.1}
    calm = emotion_mix_to_vad(intensities(neutral=0.7, **mixed))  # Emo3D's sample row 1
    # The neutral share 0.7 / 1.1 sits at the origin; the rest keeps its direction.
    without_neutral = emotion_mix_to_vad(intensities(**mixed))
    np.testing.assert_allclose(calm, 0.4 / 1.1 * without_neutral, atol=1e-6)
    assert np.abs(calm).max() < 0.25  # in a cube of side 2


def test_the_rule_is_the_bridges_rule_for_an_emotion_mix() -> None:
    row = intensities(neutral=0.5, surprise=0.2, sadness=0.7, anger=0.2, fear=0.4)
    mix = {e: w for e, w in zip(EMOTION_COLUMNS, row, strict=True) if w}
    np.testing.assert_allclose(emotion_mix_to_vad(row), mix_to_vad(mix))


def test_all_zero_intensities_give_neutral() -> None:
    assert not emotion_mix_to_vad([0.0] * 8).any()


def test_load_dataset_reads_the_emo3d_format(fixture_file: Path) -> None:
    dataset = load_dataset(fixture_file, "emo3d")
    assert len(dataset) == 3


def test_bad_intensity_names_line_and_column(tmp_path: Path) -> None:
    path = write_fixture(tmp_path / "e.csv", [
        row({"fear": 0.5}, [as_score_list(), "", "", ""]),
        row({"fear": 1.5}, [as_score_list(), "", "", ""]),
    ])  # fmt: skip
    with pytest.raises(DatasetError, match=r"line 3, column 'fear'.*outside \[0, 1\]"):
        load_emo3d(path)


def test_unknown_blendshape_name_is_an_error_with_its_cell(tmp_path: Path) -> None:
    bad = json.dumps({"browDownLeft": 0.1, "smirkLeft": 0.2})
    path = write_fixture(tmp_path / "e.csv", [row({}, ["", bad, "", ""])])
    with pytest.raises(DatasetError, match=r"line 2, column 'blenshape_score_2'.*'smirkLeft'"):
        load_emo3d(path)


def test_wrong_number_of_scores_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 52 scores, found 51"):
        parse_scores(json.dumps([0.1] * 51))


def test_incomplete_named_scores_are_an_error() -> None:
    with pytest.raises(ValueError, match="51 named scores"):
        parse_scores(json.dumps({"browDownLeft": 0.1}))


def test_garbage_score_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="unrecognised"):
        parse_scores("smile: lots")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"absent\.csv: no such file"):
        load_emo3d(tmp_path / "absent.csv")


def test_a_file_without_emo3d_columns_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("valence,arousal\n0,0\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"not an Emo3D layout.*happiness"):
        load_emo3d(path)


def test_parquet_rows_read_like_the_same_csv_rows(fixture_file: Path, tmp_path: Path) -> None:
    import pyarrow
    import pyarrow.parquet

    with open(fixture_file, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    parquet = tmp_path / "emo3d.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(records), parquet)
    from_csv, from_parquet = load_emo3d(fixture_file), load_emo3d(parquet)
    assert (from_parquet.rows, from_parquet.faces) == (from_csv.rows, from_csv.faces)
    np.testing.assert_array_equal(from_parquet.dataset.vad, from_csv.dataset.vad)
    np.testing.assert_array_equal(from_parquet.dataset.blendshapes, from_csv.dataset.blendshapes)


def test_a_broken_parquet_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "emo3d.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DatasetError, match="not a readable parquet file") as caught:
        load_emo3d(path)
    assert str(path) in str(caught.value)


def test_train_command_learns_from_emo3d_rows(
    fixture_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vadbridge.commands import main

    out = tmp_path / "run"
    argv = ["train", "--data", str(fixture_file), "--format", "emo3d", "--out", str(out)]
    assert main([*argv, "--epochs", "1"]) == 0
    assert "3 rows, 3 faces, 9 score cells without a face skipped" in capsys.readouterr().err
    assert (out / "vadbridge-v2.npz").is_file()
