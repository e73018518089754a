"""Emo3D rows (the model card's training data) -> VAD and ARKit blendshapes.

Layout (docs/references.md, "Emo3D dataset"; the dataset card's feature list): ``sample_id``,
``prompt_type``, ``text_1..3``, eight intensity columns ``neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt`` (0-1, not normalised), ``img_1..4`` and
``blenshape_score_1..4`` (sic) holding MediaPipe face-landmarker scores as text. Text and image
columns are ignored. Each score column with a face gives one sample; empty ones are skipped and
counted.

- **VAD rule**: ``vad = sum_e w_e * VAD_e / max(1, sum_e w_e)`` over the eight columns, with
  VAD_e the card's basic-emotion coordinates ("Model card"; neutral is the origin). One emotion at
  intensity i alone gives i x VAD_e (the card's intensity rule); when the intensities sum to more
  than 1 it is their weighted mean, which stays inside the cube.
- **Blendshapes**: MediaPipe's 52 scores (``_neutral`` first, no ``tongueOut``) are mapped to
  ARKit **by name** (case-insensitive), never by index; ``_neutral`` is dropped and ``tongueOut``
  is 0. A bare list of 52 numbers is read in MediaPipe's documented order, by name.

CSV is read with the standard library; parquet needs pyarrow (in the `train` extra).
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

from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES, NUM_BLENDSHAPES
from vadbridge.training.dataset import Dataset, DatasetError
from vadbridge.training.prototypes import CARD_EMOTION_VAD

EMOTION_COLUMNS: tuple[str, ...] = tuple(CARD_EMOTION_VAD)  # the card's eight, neutral first
SCORE_COLUMN_PREFIX = "blenshape_score_"  # the dataset's own spelling
MEDIAPIPE_NAMES: tuple[str, ...] = ("_neutral", *(n for n in ARKIT_NAMES if n != "tongueOut"))
_ARKIT_BY_LOWER = {name.lower(): index for name, index in ARKIT_INDEX.items()}
_CATEGORY = re.compile(
    r"score\s*=\s*(?P<score>[-+0-9.eE]+)[^)]*?category_name\s*=\s*['\"](?P<name>[^'\"]+)['\"]"
)
_VAD_TABLE = np.array([CARD_EMOTION_VAD[name] for name in EMOTION_COLUMNS], dtype=np.float64)


@dataclass(frozen=True)
class Emo3DLoad:
    dataset: Dataset
    rows: int  # data rows read
    faces: int  # samples produced (one per score column with a face)
    skipped_no_face: int  # score cells that were empty or held no face


def emotion_mix_to_vad(intensities: Iterable[float]) -> np.ndarray:
    """The module's VAD rule for the eight intensities in ``EMOTION_COLUMNS`` order."""
    weights = np.asarray(list(intensities), dtype=np.float64)
    vad = weights @ _VAD_TABLE / max(1.0, float(weights.sum()))
    return np.clip(vad, -1.0, 1.0)


def parse_scores(text: str) -> np.ndarray | None:
    """ARKit (52,) weights from one score cell, or None when the cell holds no face.

    Accepts a mapping ``{name: score}``, a list of ``{"category_name", "score"}`` records, a
    list of 52 numbers in MediaPipe order, or MediaPipe's ``Category(...)`` repr text.
    Raises ``ValueError`` for text that is none of these or names an unknown shape.
    """
    text = text.strip()
    if text in ("", "[]", "{}", "None", "nan", "NaN", "null"):
        return None
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


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # score cells are long strings
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            yield reader.line_num, record


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
    rows = _parquet_rows(source) if source.suffix.lower() == ".parquet" else _csv_rows(source)
    vads: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    count = skipped = 0
    for line, record in rows:
        if count == 0:
            _check_columns(source, record)
        count += 1
        intensities = []
        for column in EMOTION_COLUMNS:
            raw = record.get(column)
            try:
                value = float(raw) if raw not in (None, "") else 0.0
            except (TypeError, ValueError):
                raise DatasetError(source, f"not a number: {raw!r}", line, column) from None
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise DatasetError(source, f"intensity {raw!r} outside [0, 1]", line, column)
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
                raise DatasetError(source, str(error), line, column) from None
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
