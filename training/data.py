"""Datasets: VAD (N, 3) and ARKit blendshapes (N, 52) in model order; CSV and NPZ on disk.

CSV: a header with ``valence, arousal, dominance`` and the 52 ARKit names, matched
case-insensitively (Live Link Face writes ``BrowDownLeft``); other columns are ignored.
NPZ: arrays ``vad`` (N, 3) and ``blendshapes`` (N, 52), optionally ``blendshape_names`` giving the
column order (reordered by name on load). Built-in and real data go through the same loader.
"""

from __future__ import annotations

import csv
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.training.dataset import Dataset, DatasetError
from vadbridge.training.emo3d import load_emo3d

VAD_COLUMNS: tuple[str, ...] = ("valence", "arousal", "dominance")


def _check_ranges(path: str | Path, dataset: Dataset, row_offset: int | None) -> None:
    """Raise on the first non-finite or out-of-range cell, naming its row and column."""
    checks = (
        (dataset.vad, VAD_COLUMNS, -1.0, 1.0),
        (dataset.blendshapes, ARKIT_NAMES, 0.0, 1.0),
    )
    for array, names, low, high in checks:
        bad = ~np.isfinite(array) | (array < low) | (array > high)
        if bad.any():
            index, column = (int(i) for i in np.argwhere(bad)[0])
            row = None if row_offset is None else index + row_offset
            where = "" if row_offset is not None else f" (sample {index})"
            raise DatasetError(
                path,
                f"value {array[index, column]!r}{where} outside [{low:g}, {high:g}]",
                row=row,
                column=names[column],
            )


def load_csv(path: str | Path) -> Dataset:
    try:
        rows = _read_csv_rows(path)
    except UnicodeDecodeError as error:
        raise DatasetError(
            path, f"not UTF-8 text ({error.reason})", row=_first_non_utf8_line(path)
        ) from None
    except OSError as error:
        raise DatasetError(path, f"cannot read: {error.strerror or error}") from None
    if not rows:
        raise DatasetError(path, "no data rows")
    table = np.asarray(rows, dtype=np.float32)
    dataset = Dataset(vad=table[:, :3].copy(), blendshapes=table[:, 3:].copy())
    _check_ranges(path, dataset, row_offset=2)  # header is line 1; blank lines are rare
    return dataset


def _first_non_utf8_line(path: str | Path) -> int | None:
    """The 1-based line of the first undecodable byte (the decoder reads ahead in blocks)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None  # the file changed since the failed read


def _read_csv_rows(path: str | Path) -> list[list[float]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(path, "empty file (no header row)") from None
        by_lower: dict[str, int] = {}
        for index, name in enumerate(header):
            by_lower.setdefault(name.strip().lower(), index)
        wanted = (*VAD_COLUMNS, *ARKIT_NAMES)
        missing = [name for name in wanted if name.lower() not in by_lower]
        if missing:
            raise DatasetError(path, f"missing column(s): {', '.join(missing)}", row=1)
        columns = [by_lower[name.lower()] for name in wanted]
        rows: list[list[float]] = []
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) < len(header):
                raise DatasetError(
                    path, f"expected {len(header)} cells, found {len(record)}", row=line
                )
            values = []
            for name, column in zip(wanted, columns, strict=True):
                cell = record[column]
                try:
                    value = float(cell)
                except ValueError:
                    raise DatasetError(path, f"not a number: {cell!r}", line, name) from None
                if not math.isfinite(value):
                    raise DatasetError(path, f"not a finite number: {cell!r}", line, name)
                values.append(value)
            rows.append(values)
    return rows


# What numpy and zipfile raise for a file that is not a well-formed .npz of plain arrays.
_NPZ_READ_ERRORS = (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile, zlib.error)


def load_npz(path: str | Path) -> Dataset:
    try:
        vad, blendshapes, names = _read_npz(path)
    except DatasetError:
        raise
    except _NPZ_READ_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DatasetError(path, f"not a readable .npz dataset ({reason})") from None
    if names is not None:
        lower = {name.lower(): i for i, name in enumerate(names)}
        missing = [name for name in ARKIT_NAMES if name.lower() not in lower]
        if missing:
            raise DatasetError(path, f"blendshape_names lacks: {', '.join(missing)}")
        if blendshapes.ndim == 2 and blendshapes.shape[1] == len(names):
            blendshapes = blendshapes[:, [lower[name.lower()] for name in ARKIT_NAMES]]
    try:
        dataset = Dataset(vad=vad, blendshapes=np.ascontiguousarray(blendshapes))
    except ValueError as error:
        raise DatasetError(path, str(error)) from None
    _check_ranges(path, dataset, row_offset=None)
    return dataset


def _read_npz(
    path: str | Path,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], list[str] | None]:
    # Our own handle: np.load leaks the one it opens when the zip directory is corrupt.
    with open(path, "rb") as handle:
        magic = handle.read(6)
        handle.seek(0)
        if magic == b"\x93NUMPY":
            raise DatasetError(path, "a single .npy array, expected an .npz archive")
        if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            # np.load would try it as a pickle and talk about allow_pickle.
            raise DatasetError(path, "not an .npz archive (no zip signature)")
        archive = np.load(handle, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DatasetError(path, "not an .npz archive")
        with archive:
            for key in ("vad", "blendshapes"):
                if key not in archive.files:
                    raise DatasetError(path, f"missing array {key!r} (found: {archive.files})")
            vad = _float_array(path, archive, "vad")
            blendshapes = _float_array(path, archive, "blendshapes")
            names = (
                [str(n) for n in archive["blendshape_names"]]
                if "blendshape_names" in archive.files
                else None
            )
    return vad, blendshapes, names


def _float_array(
    path: str | Path, archive: np.lib.npyio.NpzFile, key: str
) -> npt.NDArray[np.float32]:
    try:
        return np.asarray(archive[key], dtype=np.float32)
    except (ValueError, TypeError) as error:
        raise DatasetError(path, f"array {key!r} is not numeric ({error})") from None


def save_csv(path: str | Path, dataset: Dataset) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow((*VAD_COLUMNS, *ARKIT_NAMES))
        table = np.concatenate([dataset.vad, dataset.blendshapes], axis=1)
        # repr of a float32 round-trips exactly through float() -> float32.
        writer.writerows([[repr(float(v)) for v in row] for row in table.tolist()])


def save_npz(path: str | Path, dataset: Dataset) -> None:
    np.savez_compressed(
        path,
        vad=dataset.vad,
        blendshapes=dataset.blendshapes,
        blendshape_names=np.array(ARKIT_NAMES),
    )


def load_dataset(path: str | Path, data_format: str | None = None) -> Dataset:
    """Load ``path`` as ``csv``, ``npz`` or ``emo3d``; the format defaults to the file extension."""
    data_format = data_format or Path(path).suffix.lower().lstrip(".")
    if not Path(path).is_file():
        raise DatasetError(path, "no such file")
    if data_format == "csv":
        return load_csv(path)
    if data_format == "npz":
        return load_npz(path)
    if data_format == "emo3d":
        return load_emo3d(path).dataset
    raise DatasetError(path, f"unknown dataset format {data_format!r} (use csv, npz or emo3d)")


def save_dataset(path: str | Path, dataset: Dataset) -> None:
    """Write ``dataset`` as CSV or NPZ, chosen by the extension of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        save_csv(path, dataset)
    elif suffix == ".npz":
        save_npz(path, dataset)
    else:
        raise DatasetError(path, f"unknown extension {suffix!r} (use .csv or .npz)")
