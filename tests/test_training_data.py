"""Dataset files: CSV and NPZ round trips, case-insensitive columns, errors that say where."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES, upper_camel
from vadbridge.training.data import (
    VAD_COLUMNS,
    Dataset,
    DatasetError,
    load_dataset,
    save_dataset,
)
from vadbridge.training.generator import generate_dataset


@pytest.fixture
def small() -> Dataset:
    return generate_dataset(25, seed=4)


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def good_row(valence: str = "0.1") -> list[str]:
    return [valence, "0.2", "-0.3", *(f"{i / 100:.2f}" for i in range(52))]


HEADER = [*VAD_COLUMNS, *ARKIT_NAMES]


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_round_trip_is_exact(tmp_path: Path, small: Dataset, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    save_dataset(path, small)
    loaded = load_dataset(path)
    assert np.array_equal(loaded.vad, small.vad)
    assert np.array_equal(loaded.blendshapes, small.blendshapes)


def test_live_link_casing_reordered_columns_and_extras_load(tmp_path: Path) -> None:
    names = [upper_camel(n) for n in reversed(ARKIT_NAMES)]
    header = ["Timecode", "Dominance", *names, "Valence", "AROUSAL", "HeadYaw"]
    values = {name: i / 100 for i, name in enumerate(ARKIT_NAMES)}
    row = ["00:00:01", "-0.3", *(str(values[n]) for n in reversed(ARKIT_NAMES)), "0.1", "0.2", "9"]
    dataset = load_dataset(write_rows(tmp_path / "llf.csv", header, [row]))
    np.testing.assert_allclose(dataset.vad[0], [0.1, 0.2, -0.3])
    assert dataset.blendshapes[0, ARKIT_INDEX["mouthSmileLeft"]] == pytest.approx(0.43)
    assert dataset.blendshapes[0, ARKIT_INDEX["browDownLeft"]] == 0.0


def test_missing_shape_column_is_named(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "jawOpen"]
    path = write_rows(tmp_path / "d.csv", header, [good_row()[:-1]])
    with pytest.raises(DatasetError, match=r"missing column.*jawOpen") as caught:
        load_dataset(path)
    assert caught.value.path == str(path)


def test_non_numeric_cell_names_line_and_column(tmp_path: Path) -> None:
    rows = [good_row(), good_row(), good_row()]
    rows[1][3 + ARKIT_INDEX["cheekPuff"]] = "lots"
    with pytest.raises(DatasetError, match=r"line 3, column 'cheekPuff'.*'lots'") as caught:
        load_dataset(write_rows(tmp_path / "d.csv", HEADER, rows))
    assert (caught.value.row, caught.value.column) == (3, "cheekPuff")


@pytest.mark.parametrize(
    ("column", "value"), [("valence", "-1.5"), ("mouthFunnel", "1.2"), ("eyeWideLeft", "-0.01")]
)
def test_out_of_range_cell_names_line_and_column(tmp_path: Path, column: str, value: str) -> None:
    rows = [good_row(), good_row()]
    rows[1][HEADER.index(column)] = value
    with pytest.raises(DatasetError, match=rf"line 3, column '{column}'.*outside") as caught:
        load_dataset(write_rows(tmp_path / "d.csv", HEADER, rows))
    assert caught.value.row == 3


def test_nan_cell_is_rejected(tmp_path: Path) -> None:
    rows = [good_row(valence="nan")]
    with pytest.raises(DatasetError, match=r"line 2, column 'valence'.*finite"):
        load_dataset(write_rows(tmp_path / "d.csv", HEADER, rows))


def test_short_row_is_rejected_with_its_line(tmp_path: Path) -> None:
    rows = [good_row(), good_row()[:10]]
    with pytest.raises(DatasetError, match=r"line 3.*expected 55 cells, found 10"):
        load_dataset(write_rows(tmp_path / "d.csv", HEADER, rows))


def test_header_only_file_has_no_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no data rows"):
        load_dataset(write_rows(tmp_path / "d.csv", HEADER, []))


def test_npz_columns_are_reordered_by_name(tmp_path: Path) -> None:
    order = list(reversed(ARKIT_NAMES))
    blendshapes = np.tile(np.linspace(0, 1, 52, dtype=np.float32), (2, 1))
    path = tmp_path / "d.npz"
    np.savez(path, vad=np.zeros((2, 3)), blendshapes=blendshapes, blendshape_names=np.array(order))
    loaded = load_dataset(path)
    assert loaded.blendshapes[0, ARKIT_INDEX[order[5]]] == pytest.approx(5 / 51)


def test_npz_missing_array_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, vad=np.zeros((2, 3)))
    with pytest.raises(DatasetError, match="missing array 'blendshapes'"):
        load_dataset(path)


def test_npz_out_of_range_names_sample_and_column(tmp_path: Path) -> None:
    blendshapes = np.zeros((3, 52), dtype=np.float32)
    blendshapes[2, ARKIT_INDEX["jawOpen"]] = 2.0
    path = tmp_path / "d.npz"
    np.savez(path, vad=np.zeros((3, 3)), blendshapes=blendshapes)
    with pytest.raises(DatasetError, match=r"column 'jawOpen'.*sample 2"):
        load_dataset(path)


def test_npz_wrong_shape_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, vad=np.zeros((3, 3)), blendshapes=np.zeros((3, 51)))
    with pytest.raises(DatasetError, match=r"shape \(3, 52\)"):
        load_dataset(path)


def test_unknown_extension_is_rejected(tmp_path: Path, small: Dataset) -> None:
    with pytest.raises(DatasetError, match=r"unknown extension '\.txt'"):
        save_dataset(tmp_path / "d.txt", small)
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DatasetError, match="unknown dataset format 'txt'"):
        load_dataset(tmp_path / "d.txt")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"absent\.csv: no such file"):
        load_dataset(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [
        ({"vad": np.array([[None, 0, 0]], dtype=object)}, "Object arrays cannot be loaded"),
        ({"vad": np.array([["a", "b", "c"]])}, "array 'vad' is not numeric"),
        ({"blendshapes": np.array([["x"] * 52])}, "array 'blendshapes' is not numeric"),
    ],
)
def test_npz_with_object_or_string_arrays_names_the_file(
    tmp_path: Path, arrays: dict[str, np.ndarray], reason: str
) -> None:
    path = tmp_path / "d.npz"
    np.savez(
        path,
        vad=arrays.get("vad", np.zeros((1, 3))),
        blendshapes=arrays.get("blendshapes", np.zeros((1, 52))),
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(info.value).startswith(f"{path}: ") and reason in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04 truncated zip", b"PK\x05\x06"],
    ids=["broken-zip", "short-zip"],
)
def test_npz_that_is_not_an_archive_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(info.value).startswith(f"{path}: not a readable .npz dataset (")


@pytest.mark.parametrize("content", [b"valence,arousal\n0,0\n", b""], ids=["text", "empty"])
def test_npz_without_a_zip_signature_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(info.value) == f"{path}: not an .npz archive (no zip signature)"


def test_npz_holding_a_single_npy_array_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((2, 3)))
    with pytest.raises(DatasetError, match=r"single \.npy array, expected an \.npz archive"):
        load_dataset(path)


def test_non_utf8_csv_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "d.csv", HEADER, [good_row(), good_row(), good_row()])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"0.2", b"0\xe9", 1)  # Latin-1 "é" in line 3
    path.write_bytes(b"".join(lines))
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(info.value).startswith(f"{path}, line 3: not UTF-8 text")
    assert info.value.row == 3
