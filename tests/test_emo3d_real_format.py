"""Emo3D as published: score cells that are numpy's ``str()`` of 52 scores, wrapped over lines
inside the CSV cell, ``None`` where no face was found, ``_neutral`` first.

The fixture (tests/fixtures/emo3d/, README there) was typed in the dataset card's layout; the
authors read such a cell with ``np.array(cell.strip("[]").split(), dtype=float)`` and name the
values with MediaPipe's list, which is what ``authors_reading`` below does.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import vadbridge
from vadbridge.commands import main
from vadbridge.model.arkit import ARKIT_INDEX
from vadbridge.training.dataset import DatasetError
from vadbridge.training.emo3d import (
    EMOTION_COLUMNS,
    MEDIAPIPE_NAMES,
    emotion_mix_to_vad,
    load_emo3d,
    parse_scores,
)
from vadbridge.training.prototypes import CARD_EMOTION_VAD

FIXTURE = Path(__file__).parent / "fixtures" / "emo3d" / "emo3d_sample.csv"
CARD_COLUMNS = [
    "sample_id", "prompt_type", "text_1", "text_2", "text_3", *EMOTION_COLUMNS,
    "img_1", "img_2", "img_3", "img_4",
    "blenshape_score_1", "blenshape_score_2", "blenshape_score_3", "blenshape_score_4",
]  # fmt: skip
SCORE_COLUMNS = CARD_COLUMNS[-4:]


def fixture_records() -> list[dict[str, str]]:
    with open(FIXTURE, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def score_cells() -> list[str]:
    cells = [record[c] for record in fixture_records() for c in SCORE_COLUMNS]
    return [cell for cell in cells if cell != "None"]


def authors_reading(cell: str) -> dict[str, float]:
    values = np.array(cell.strip("[]").split(), dtype=float)
    return dict(zip(MEDIAPIPE_NAMES, values.tolist(), strict=True))


def test_fixture_columns_are_the_dataset_cards_in_its_order() -> None:
    with open(FIXTURE, newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == CARD_COLUMNS


def test_fixture_cells_are_exactly_what_numpy_prints() -> None:
    cells = score_cells()
    assert len(cells) == 35
    for cell in cells:
        assert cell == str(np.array(cell.strip("[]").split(), dtype=float))
        assert cell.count("\n") == 4 and "," not in cell  # 52 numbers at 12 a line


def test_published_rows_give_one_sample_per_face_and_count_the_none_cells() -> None:
    loaded = load_emo3d(FIXTURE)
    assert (loaded.rows, loaded.faces, loaded.skipped_no_face) == (11, 35, 9)
    assert loaded.dataset.blendshapes.shape == (35, 52)


def test_numpy_str_scores_map_to_arkit_by_name_as_the_authors_read_them() -> None:
    faces = load_emo3d(FIXTURE).dataset.blendshapes
    for face, cell in zip(faces, score_cells(), strict=True):
        expected = authors_reading(cell)
        for name in MEDIAPIPE_NAMES[1:]:
            assert face[ARKIT_INDEX[name]] == pytest.approx(expected[name], abs=1e-6), name
        assert face[ARKIT_INDEX["tongueOut"]] == 0.0


def test_the_first_published_cell_reads_as_shown_in_the_authors_notebook() -> None:
    face = parse_scores(fixture_records()[0]["blenshape_score_1"])
    assert face is not None
    shown = {"browDownLeft": 0.271, "browDownRight": 0.191, "browInnerUp": 0.165}
    assert {name: round(float(face[ARKIT_INDEX[name]]), 3) for name in shown} == shown


def test_a_row_with_high_neutral_lands_near_the_origin() -> None:
    loaded = load_emo3d(FIXTURE)
    calm = loaded.dataset.vad[-3]  # sample 9: neutral 0.7, happiness 0.1 -> 1/8 of happiness
    np.testing.assert_allclose(calm, np.asarray(CARD_EMOTION_VAD["happiness"]) / 8, atol=1e-6)


def test_every_row_vad_is_the_mix_of_its_intensities() -> None:
    loaded = load_emo3d(FIXTURE)
    rows = [r for r in fixture_records() for c in SCORE_COLUMNS if r[c] != "None"]
    for vad, record in zip(loaded.dataset.vad, rows, strict=True):
        expected = emotion_mix_to_vad(float(record[e]) for e in EMOTION_COLUMNS)
        np.testing.assert_array_equal(vad, expected)


def test_the_published_parquet_form_reads_like_the_csv(tmp_path: Path) -> None:
    import pyarrow
    import pyarrow.parquet

    records: list[dict[str, object]] = []
    for record in fixture_records():
        row: dict[str, object] = {k: None if v == "None" else v for k, v in record.items()}
        row.update({e: float(record[e]) for e in EMOTION_COLUMNS})  # float64 in the card
        row["sample_id"] = int(record["sample_id"])
        records.append(row)
    parquet = tmp_path / "emo3d_data.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(records), parquet)
    from_csv, from_parquet = load_emo3d(FIXTURE), load_emo3d(parquet)
    assert (from_parquet.faces, from_parquet.skipped_no_face) == (35, 9)
    np.testing.assert_array_equal(from_parquet.dataset.vad, from_csv.dataset.vad)
    np.testing.assert_array_equal(from_parquet.dataset.blendshapes, from_csv.dataset.blendshapes)


def test_unrounded_scores_in_exponent_notation_parse() -> None:
    scores = np.linspace(0.0, 0.9, 52) ** 3
    scores[5] = 1.23e-4
    text = str(scores)
    assert "e-" in text and "\n" in text
    face = parse_scores(text)
    assert face is not None
    assert face[ARKIT_INDEX[MEDIAPIPE_NAMES[5]]] == pytest.approx(1.23e-4)
    assert face[ARKIT_INDEX["noseSneerRight"]] == pytest.approx(0.9**3)


def test_one_face_printed_as_a_one_row_array_parses() -> None:
    cell = score_cells()[0]
    np.testing.assert_array_equal(parse_scores(f"[{cell}]"), parse_scores(cell))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[0.    0.271 0.191]", "expected 52 scores, found 3"),
        ("[0. 0.1 ... 0.2 0.3]", "summarised array"),
        ("[[0. 0.1]\n [0.2 0.3]]", "more than one face"),
        ("[" + " 0.1" * 15 + " 0.x1" + " 0.1" * 36 + "]", "'eyeLookOutLeft' is not a number"),
        ("[" + " 0.1" * 51 + " nan]", "non-finite score for 'noseSneerRight'"),
    ],
)
def test_a_bad_numpy_cell_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_scores(text)


def test_a_bad_score_in_a_wrapped_cell_names_file_line_and_column(tmp_path: Path) -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    cell = fixture_records()[3]["blenshape_score_2"]  # sample 3, two lines below its first
    bad_cell = cell.replace("0.29 ", "0.2.9", 1)
    start = text.index(cell)
    path = tmp_path / "emo3d.csv"
    path.write_text(text.replace(cell, bad_cell), encoding="utf-8")
    line = text[:start].count("\n") + 1
    with pytest.raises(DatasetError) as caught:
        load_emo3d(path)
    error = caught.value
    assert (error.path, error.row, error.column) == (str(path), line, "blenshape_score_2")
    assert "'browInnerUp' is not a number: '0.2.9'" in str(error)


def test_a_short_row_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    path = tmp_path / "emo3d.csv"
    path.write_text(text + "11,prompt2,a,b,c,0.5,0.5\n", encoding="utf-8")  # after line 152
    with pytest.raises(DatasetError, match=r"line 153: expected 21 cells, found 7"):
        load_emo3d(path)


def test_train_reads_emo3d_prefix_and_writes_a_model_that_predicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--data", f"emo3d:{FIXTURE}", "--epochs", "2", "--out", str(tmp_path)]
    assert main([*argv, "--batch-size", "16"]) == 0
    assert "11 rows, 35 faces, 9 score cells without a face skipped" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["training"]["data"] == "emo3d:emo3d_sample.csv"
    model, meta = vadbridge.load_model(tmp_path / "vadbridge-v2.npz")
    assert len(meta["blendshape_names"]) == 52
    for vad in ([0.0, 0.0, 0.0], CARD_EMOTION_VAD["happiness"], [-1.0, 1.0, -1.0]):
        weights = vadbridge.predict(model, np.asarray(vad, dtype=np.float32))
        assert weights.shape == (52,) and np.isfinite(weights).all()
        assert weights.min() >= 0.0 and weights.max() <= 1.0


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--data", "emo3d:"], "--data emo3d: needs a file after the colon"),
        (["--data", f"emo3d:{FIXTURE}", "--format", "csv"], "--format csv contradicts"),
        (["--data", "emo3d:absent.csv"], "absent.csv: no such file"),
    ],
)
def test_bad_emo3d_data_arguments_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], reason: str
) -> None:
    assert main(["train", *extra, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1
