"""Render preview PNGs with matplotlib (an optional extra): a face + bar chart, a grid, a VAD map.

matplotlib is imported inside the functions, and only its object-oriented API with the Agg
canvas is used (no pyplot): nothing global changes and no display is needed. Figures are saved
without ``bbox_inches="tight"``, so a PNG is exactly ``figsize * dpi`` pixels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.tools.preview_face import FaceGeometry, face_geometry

SINGLE_FIGSIZE_IN = (11.0, 8.0)
GRID_FIGSIZE_IN = (16.0, 8.5)
MAP_FIGSIZE_IN = (8.0, 7.0)
DEFAULT_DPI = 100
PREVIEW_EXTRA_HINT = "pip install 'vadbridge[preview]'"

_SKIN, _LINE, _LIP, _MOUTH, _BLUSH = "#f3d2b3", "#3b2a20", "#b5474b", "#5a1a1e", "#e8837e"
_BROW, _IRIS, _TONGUE = "#4a3426", "#4f7cac", "#d9686f"


class MatplotlibMissingError(RuntimeError):
    """matplotlib is not installed; the message says how to install the extra."""


@dataclass(frozen=True)
class Panel:
    """One face to draw: a title line and its 52 weights."""

    title: str
    weights: npt.NDArray[np.float32]


def pixel_size(figsize_in: tuple[float, float], dpi: int) -> tuple[int, int]:
    """(width, height) in pixels of a figure saved at ``dpi`` (what the PNG header will say)."""
    return round(figsize_in[0] * dpi), round(figsize_in[1] * dpi)


def _figure(figsize_in: tuple[float, float], dpi: int) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissingError(f"matplotlib is not installed: {PREVIEW_EXTRA_HINT}") from None
    figure = Figure(figsize=figsize_in, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | os.PathLike[str], dpi: int) -> None:
    figure.savefig(os.fspath(path), dpi=dpi, format="png", facecolor="white")


# --- the face ------------------------------------------------------------------------------------


def draw_face(ax: Any, geometry: FaceGeometry, title: str = "") -> None:
    from matplotlib.patches import Circle, Ellipse, Polygon

    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.35, 1.15)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    ax.add_patch(Polygon(geometry.outline, closed=True, facecolor=_SKIN, edgecolor=_LINE, lw=2))
    for cheek in geometry.cheeks:
        ax.add_patch(Circle(cheek.centre, cheek.radius, facecolor=_BLUSH, alpha=cheek.blush, lw=0))
    for brow in geometry.brows:
        ax.plot(brow[:, 0], brow[:, 1], color=_BROW, lw=5, solid_capstyle="round")
    for eye in geometry.eyes:
        outline = np.vstack((eye.upper_lid, eye.lower_lid[::-1]))
        if eye.opening > 1e-3:
            white = Polygon(outline, closed=True, facecolor="white", edgecolor="none")
            ax.add_patch(white)
            iris = Circle(eye.iris_centre, eye.iris_radius, facecolor=_IRIS, edgecolor=_LINE)
            pupil = Circle(eye.iris_centre, eye.iris_radius * 0.45, facecolor="black")
            for patch in (iris, pupil):
                ax.add_patch(patch)
                patch.set_clip_path(white)  # the lids cover what lies outside the eye opening
        ax.plot(eye.upper_lid[:, 0], eye.upper_lid[:, 1], color=_LINE, lw=2.2)
        ax.plot(eye.lower_lid[:, 0], eye.lower_lid[:, 1], color=_LINE, lw=1.0)
    ax.plot(geometry.nose[:, 0], geometry.nose[:, 1], color=_LINE, lw=1.5)
    for line in geometry.sneer_lines:
        if len(line):
            ax.plot(line[:, 0], line[:, 1], color=_LINE, lw=1.2)
    mouth = geometry.mouth
    inside = np.vstack((mouth.upper_lip, mouth.lower_lip[::-1]))
    ax.add_patch(Polygon(inside, closed=True, facecolor=_MOUTH, edgecolor="none"))
    if mouth.tongue > 0.05 and mouth.opening > 0.02:
        centre = mouth.lower_lip[len(mouth.lower_lip) // 2]
        tongue = Ellipse(
            (centre[0], centre[1] - 0.02 * mouth.tongue),
            width=0.22,
            height=0.05 + 0.12 * mouth.tongue,
            facecolor=_TONGUE,
            edgecolor=_LINE,
            lw=0.8,
        )
        ax.add_patch(tongue)
    for lip in (mouth.upper_lip, mouth.lower_lip):
        ax.plot(lip[:, 0], lip[:, 1], color=_LIP, lw=3, solid_capstyle="round")


def draw_bars(ax: Any, weights: npt.NDArray[np.float32]) -> None:
    """A horizontal bar per blendshape, in ARKit order top to bottom, on a fixed 0..1 scale."""
    positions = np.arange(len(ARKIT_NAMES))
    ax.barh(positions, weights, color="#4f7cac", height=0.75)
    ax.set_yticks(positions, labels=list(ARKIT_NAMES), fontsize=6.5)
    ax.set_ylim(len(ARKIT_NAMES) - 0.5, -0.5)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("weight")
    ax.grid(axis="x", alpha=0.3)
    for y, value in zip(positions, weights, strict=True):
        if value >= 0.05:
            ax.text(min(value + 0.01, 0.9), y, f"{value:.2f}", va="center", fontsize=5.5)


def render_face_sheet(
    panel: Panel, path: str | os.PathLike[str], dpi: int = DEFAULT_DPI
) -> tuple[int, int]:
    """The face on the left, the 52 weights on the right; returns the pixel size."""
    figure = _figure(SINGLE_FIGSIZE_IN, dpi)
    face_ax = figure.add_axes((0.02, 0.05, 0.5, 0.88))
    bars_ax = figure.add_axes((0.66, 0.06, 0.32, 0.88))
    draw_face(face_ax, face_geometry(panel.weights), panel.title)
    draw_bars(bars_ax, panel.weights)
    _save(figure, path, dpi)
    return pixel_size(SINGLE_FIGSIZE_IN, dpi)


def render_grid(
    panels: Sequence[Panel], path: str | os.PathLike[str], dpi: int = DEFAULT_DPI
) -> tuple[int, int]:
    """Up to 8 faces in two rows of four, each titled (the grid of basic emotions)."""
    if not 1 <= len(panels) <= 8:
        raise ValueError(f"a grid holds 1 to 8 faces, got {len(panels)}")
    figure = _figure(GRID_FIGSIZE_IN, dpi)
    for i, panel in enumerate(panels):
        row, col = divmod(i, 4)
        ax = figure.add_axes((0.01 + col * 0.2475, 0.5 - row * 0.485, 0.235, 0.42))
        draw_face(ax, face_geometry(panel.weights), panel.title)
    _save(figure, path, dpi)
    return pixel_size(GRID_FIGSIZE_IN, dpi)


def map_labels(
    marks: Mapping[str, tuple[float, float, float]],
) -> list[tuple[tuple[float, float], str, bool, bool]]:
    """Marker positions with their labels, placed so neighbouring labels do not collide.

    Emotions at the same valence and arousal (fear and anger in the model card) share one label
    listing each one's dominance; a label goes below its point when one is already placed just
    beside it, and to the left of points in the right part of the map so it stays inside.
    """
    merged: dict[tuple[float, float], list[str]] = {}
    for name, (valence, arousal, dominance) in marks.items():
        merged.setdefault((valence, arousal), []).append(f"{name} (D {dominance:+.1f})")
    placed: list[tuple[tuple[float, float], str, bool, bool]] = []
    for point in sorted(merged):
        crowded = any(
            not below and abs(point[0] - other[0]) < 0.45 and abs(point[1] - other[1]) < 0.1
            for other, _, below, _ in placed
        )
        placed.append((point, " / ".join(merged[point]), crowded, point[0] > 0.3))
    return placed


def render_map(
    values: npt.NDArray[np.float32],
    shape_name: str,
    dominance: float,
    marks: Mapping[str, tuple[float, float, float]],
    path: str | os.PathLike[str],
    dpi: int = DEFAULT_DPI,
) -> tuple[int, int]:
    """``values[arousal_row, valence_col]`` over [-1, 1]^2 as a heat map with labelled marks."""
    figure = _figure(MAP_FIGSIZE_IN, dpi)
    ax = figure.add_axes((0.11, 0.09, 0.7, 0.8))
    colour_ax = figure.add_axes((0.85, 0.09, 0.035, 0.8))
    image = ax.imshow(
        values,
        origin="lower",
        extent=(-1.0, 1.0, -1.0, 1.0),
        vmin=0.0,
        vmax=1.0,
        cmap="viridis",
        interpolation="bilinear",
        aspect="equal",
    )
    figure.colorbar(image, cax=colour_ax, label=f"{shape_name} weight")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title(f"{shape_name} over valence x arousal at dominance {dominance:+.2f}")
    ax.axhline(0.0, color="white", lw=0.5, alpha=0.5)
    ax.axvline(0.0, color="white", lw=0.5, alpha=0.5)
    for (valence, arousal), label, below, left in map_labels(marks):
        ax.plot(valence, arousal, marker="o", color="white", markeredgecolor="black", ms=6)
        ax.annotate(
            label,
            (valence, arousal),
            xytext=(-6 if left else 6, -14 if below else 6),
            textcoords="offset points",
            ha="right" if left else "left",
            fontsize=8,
            color="white",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.45, "lw": 0},
        )
    _save(figure, path, dpi)
    return pixel_size(MAP_FIGSIZE_IN, dpi)
