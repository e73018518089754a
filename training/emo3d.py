"""Emo3D rows (the model card's training data) -> VAD and ARKit blendshapes.

Layout (docs/references.md, "Emo3D dataset"; the dataset card's feature list): ``sample_id``,
``prompt_type``, ``text_1..3``, eight intensity columns ``neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt`` (0-1, not normalised), ``img_1..4`` and
``blenshape_score_1..4`` (sic). Text and image columns are ignored. Each score column with a
face gives one sample; cells without a face are skipped and counted.

- **Score cells** as published: numpy's ``str()`` of the 52 MediaPipe scores, e.g.
  ``[0.    0.271 0.191 ...`` -- space separated, no commas, wrapped over several lines inside
  the CSV cell (numpy's 75-character line width), ``_neutral`` first, then the 51 ARKit shapes in
  MediaPipe's order (no ``tongueOut``); ``None`` (or an empty cell) where MediaPipe found no
  face. The authors read them with ``strip("[]").split()``. Also accepted: a mapping
  ``{name: score}``, a list of ``{"category_name", "score"}`` records, a comma-separated list
  of 52 numbers, or MediaPipe's ``Category(...)`` repr text. Scores are mapped to ARKit **by
  name**, never by index; ``_neutral`` is dropped and ``tongueOut`` is 0.
- **VAD rule**: the eight intensities are a distribution over the card's eight emotions, as in
  the Emo3D metric (its code, the authors' ``get_emotion_distribution``, divides the vector by
  its sum; docs/references.md, "Emo3D dataset"), and VAD is that distribution's mean of the card's
  basic-emotion coordinates: ``vad = sum_e w_e * VAD_e / sum_e w_e`` -- the same rule as
  ``mix_to_vad`` for a classifier's scores. Neutral is the origin, so its share pulls the face
  toward it: neutral 0.7 with happiness 0.3 gives ``0.3 * VAD_happiness``, exactly
  ``emotion_to_vad("happiness", 0.3)`` (the card's intensity rule). One emotion with no neutral
  share is that emotion's full VAD at any intensity (a one-hot distribution); all zeros is
  neutral.

CSV is read with the standard library; parquet needs pyarrow (in the `train` extra). Errors name
the file, the CSV line where the bad cell starts and the column.
"""

from __future__ import annotations

import ast
import csv
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES, NUM_BLENDSHAPES
from vadbridge.model.emotions import mix_to_vad
from vadbridge.training.dataset import Dataset, DatasetError
from vadbridge.training.prototypes import CARD_EMOTION_VAD

EMOTION_COLUMNS: tuple[str, ...] = tuple(CARD_EMOTION_VAD)  # the card's eight, neutral first
SCORE_COLUMN_PREFIX = "blenshape_score_"  # the dataset's own spelling
MEDIAPIPE_NAMES: tuple[str, ...] = ("_neutral", *(n for n in ARKIT_NAMES if n != "tongueOut"))
_ARKIT_BY_LOWER = {name.lower(): index for name, index in ARKIT_INDEX.items()}
_CATEGORY = re.compile(
    r"score\s*=\s*(?P<score>[-+0-9.eE]+)[^)]*?category_name\s*=\s*['\"](?P<name>[^'\"]+)['\"]"
)
_NO_FACE = frozenset(("", "[]", "{}", "None", "nan", "NaN", "null"))
# One number as numpy prints it: "0.", "0.271", "-0.", "1.23e-04", "nan", "inf".
_NUMPY_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)")


@dataclass(frozen=True)
class Emo3DLoad:
    dataset: Dataset
    rows: int  # data rows read
    faces: int  # samples produced (one per score column with a face)
    skipped_no_face: int  # score cells that were empty or held no face


def emotion_mix_to_vad(intensities: Iterable[float]) -> npt.NDArray[np.float32]:
    """The module's VAD rule for the eight intensities in ``EMOTION_COLUMNS`` order."""
    weights = {name: float(w) for name, w in zip(EMOTION_COLUMNS, intensities, strict=True)}
    if not any(weights.values()):
        return np.zeros(3, dtype=np.float32)  # nothing rated: neutral (the paper's rule is 0/0)
    return mix_to_vad(weights)


def parse_scores(text: str) -> npt.NDArray[np.float32] | None:
    """ARKit (52,) weights from one score cell, or None when the cell holds no face.

    Reads numpy's ``str()`` of the 52 scores (the published cells), a mapping
    ``{name: score}``, a list of ``{"category_name", "score"}`` records, a list of 52 numbers in
    MediaPipe order, or MediaPipe's ``Category(...)`` repr text. Raises ``ValueError`` for text
    that is none of these or names an unknown shape.
    """
    text = text.strip()
    if text in _NO_FACE:
        return None
    pairs = _pairs_from_numpy_str(text)
    if pairs is None:
        pairs = _pairs_from_literal(text)
    if pairs is None:
        pairs = [(m["name"], float(m["score"])) for m in _CATEGORY.finditer(text)]
        if not pairs:
            raise ValueError(f"unrecognised blendshape score text: {text[:60]!r}")
    if not pairs:
        return None
    face = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
    seen = 0
    for name, score in pairs:
        if name.lower() == "_neutral":
            continue
        index = _ARKIT_BY_LOWER.get(name.lower())
        if index is None:
            raise ValueError(f"unknown blendshape name {name!r}")
        if not math.isfinite(score):
            raise ValueError(f"non-finite score for {name!r}")
        face[index] = min(max(score, 0.0), 1.0)  # MediaPipe can overshoot by float error
        seen += 1
    if seen < NUM_BLENDSHAPES - 1:
        raise ValueError(f"expected 51 named scores besides _neutral, found {seen}")
    face[ARKIT_INDEX["tongueOut"]] = 0.0
    return face


def _pairs_from_numpy_str(text: str) -> list[tuple[str, float]] | None:
    """Scores from numpy's ``str()`` of a 1-D array (or of one face as a (1, 52) array).

    None when ``text`` is not bracketed, comma-free text, so other formats get their turn.
    """
    if not (text.startswith("[") and text.endswith("]")) or "," in text or "(" in text:
        return None
    inner = text[1:-1].strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]  # str() of a (1, 52) array
    if "[" in inner or "]" in inner:
        raise ValueError("more than one face in one score cell")
    if "..." in inner:
        raise ValueError("summarised array ('...'): the cell lost scores when it was printed")
    tokens = inner.split()
    if len(tokens) != len(MEDIAPIPE_NAMES):
        raise ValueError(f"expected {len(MEDIAPIPE_NAMES)} scores, found {len(tokens)}")
    for name, token in zip(MEDIAPIPE_NAMES, tokens, strict=True):
        if not _NUMPY_NUMBER.fullmatch(token):
            raise ValueError(f"score of {name!r} is not a number: {token!r}")
    return [(name, float(token)) for name, token in zip(MEDIAPIPE_NAMES, tokens, strict=True)]


def _pairs_from_literal(text: str) -> list[tuple[str, float]] | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, Mapping):
        return [(str(k), float(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)) and len(value) == 1:
            value = value[0]  # one face from a multi-face result
        if all(isinstance(v, (int, float)) for v in value):
            if len(value) != len(MEDIAPIPE_NAMES):
                raise ValueError(f"expected {len(MEDIAPIPE_NAMES)} scores, found {len(value)}")
            return [(n, float(v)) for n, v in zip(MEDIAPIPE_NAMES, value, strict=True)]
        if all(isinstance(v, Mapping) for v in value):
            out = []
            for record in value:
                name = record.get("category_name", record.get("name"))
                if name is None or "score" not in record:
                    raise ValueError("score records need 'category_name' and 'score'")
                out.append((str(name), float(record["score"])))
            return out
    raise ValueError(f"unrecognised blendshape score value of type {type(value).__name__}")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line where the record starts, {column: cell})``; a score cell spans several lines."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # score cells are long strings
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        end = reader.line_num
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not cells:
                continue  # a blank line
            if len(cells) < len(header):
                raise DatasetError(
                    path, f"expected {len(header)} cells, found {len(cells)}", row=start
                )
            yield start, dict(zip(header, cells, strict=False))


def _cell_line(start: int, record: Mapping[str, Any], column: str, is_csv: bool) -> int:
    """The CSV line where ``column``'s cell starts (the cells before it may hold line breaks);
    for parquet, the row number ``start``."""
    if not is_csv:
        return start
    line = start
    for name, cell in record.items():
        if name == column:
            break
        line += str(cell).count("\n")
    return line


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet
    except ImportError:
        raise DatasetError(
            path, "reading parquet needs pyarrow: pip install 'vadbridge[train]' (or pyarrow)"
        ) from None
    try:
        table = pyarrow.parquet.read_table(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DatasetError(path, f"not a readable parquet file: {error}") from None
    yield from enumerate(table.to_pylist(), start=1)


def load_emo3d(path: str | Path) -> Emo3DLoad:
    """Read Emo3D rows from a ``.csv`` or ``.parquet`` file (row numbers in errors: CSV lines)."""
    source = Path(path)
    if not source.is_file():
        raise DatasetError(source, "no such file")
    is_csv = source.suffix.lower() != ".parquet"
    rows = _csv_rows(source) if is_csv else _parquet_rows(source)
    vads: list[npt.NDArray[np.float32]] = []
    faces: list[npt.NDArray[np.float32]] = []
    count = skipped = 0
    for line, record in rows:
        if count == 0:
            _check_columns(source, record)
        count += 1
        intensities = []
        for column in EMOTION_COLUMNS:
            raw = record.get(column)
            at = _cell_line(line, record, column, is_csv)
            try:
                value = float(raw) if raw not in (None, "") else 0.0
            except (TypeError, ValueError):
                raise DatasetError(source, f"not a number: {raw!r}", at, column) from None
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise DatasetError(source, f"intensity {raw!r} outside [0, 1]", at, column)
            intensities.append(value)
        vad = emotion_mix_to_vad(intensities)
        for column in sorted(k for k in record if str(k).startswith(SCORE_COLUMN_PREFIX)):
            cell = record[column]
            if cell is None or (isinstance(cell, float) and math.isnan(cell)):
                skipped += 1
                continue
            try:
                face = parse_scores(str(cell))
            except ValueError as error:
                at = _cell_line(line, record, column, is_csv)
                raise DatasetError(source, str(error), at, column) from None
            if face is None:
                skipped += 1
                continue
            vads.append(vad)
            faces.append(face)
    if count == 0:
        raise DatasetError(source, "no data rows")
    if not faces:
        raise DatasetError(source, f"no faces in {count} rows ({skipped} empty score cells)")
    dataset = Dataset(
        vad=np.asarray(vads, dtype=np.float32), blendshapes=np.asarray(faces, dtype=np.float32)
    )
    return Emo3DLoad(dataset=dataset, rows=count, faces=len(faces), skipped_no_face=skipped)


def _check_columns(path: Path, record: Mapping[str, Any]) -> None:
    missing = [c for c in EMOTION_COLUMNS if c not in record]
    if not any(str(k).startswith(SCORE_COLUMN_PREFIX) for k in record):
        missing.append(SCORE_COLUMN_PREFIX + "1..4")
    if missing:
        raise DatasetError(path, f"not an Emo3D layout; missing column(s): {', '.join(missing)}")
