"""``python -m vadbridge.tools.step_plot``: how a smile rises and fades (the README's step plot).

A step response of the real animator with the bundled model: a neutral face, then happiness
held for ``hold_s``, then neutral again, stepped frame by frame at a given frame rate, reading
``mouthSmileLeft``. The rise is measured to 63% of the way from the neutral smile to the full
one, the fall back to 37% (one time constant each, for a plain exponential).
``tests/test_attack_release.py`` asserts on these crossings; this module draws them to
docs/images/step-response.png (needs matplotlib, the ``[preview]`` extra).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbridge.config import BridgeConfig, SmoothingSpace
from vadbridge.core.animator import Animator, Engine
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.smoothing import TimeConstants
from vadbridge.model.api import load_model
from vadbridge.model.arkit import ARKIT_INDEX
from vadbridge.model.emotions import emotion_to_vad
from vadbridge.tools.preview_draw import MatplotlibMissingError, _figure, _save
from vadbridge.wiring import time_constants

RISE_FRACTION = 1.0 - 1.0 / np.e  # 63%: one time constant of a plain exponential
FALL_FRACTION = 1.0 / np.e  # 37%
DEFAULT_OUT = Path("docs/images/step-response.png")
PLOT_FRAME_RATES = (30, 60, 120)
LEGACY_TAU_S = 0.150  # the single time constant of earlier versions' default config
SHOWN_RISE_S, SHOWN_FALL_S = 1.0, 1.5  # how much of each phase the plot shows
FIGSIZE_IN = (9.0, 4.8)
DPI = 100


@dataclass(frozen=True)
class StepResponse:
    """One shape's weight at every frame after a step up (before frame ``release_frame``) and
    after the step back down (from it on). A step lands between two frames, so frame k of a
    phase shows the face k + 1 periods after the step."""

    weight: np.ndarray
    frame_rate: int
    release_frame: int
    neutral: float  # the weight at rest, before the step
    full: float  # the weight the held emotion settled on

    @property
    def progress(self) -> np.ndarray:
        """The weight as a fraction of the way from ``neutral`` to ``full``."""
        return (self.weight - self.neutral) / (self.full - self.neutral)

    def phase_s(self) -> np.ndarray:
        """Each frame's time in seconds since the step that started its phase."""
        frames = np.arange(len(self.weight))
        return (np.where(frames < self.release_frame, frames, frames - self.release_frame) + 1
                ) / self.frame_rate

    def rise_s(self, fraction: float = RISE_FRACTION) -> float:
        """Seconds from the step up to the first frame at or past ``fraction`` of the way."""
        reached = np.flatnonzero(self.progress[: self.release_frame] >= fraction)
        return float(reached[0] + 1) / self.frame_rate

    def fall_s(self, fraction: float = FALL_FRACTION) -> float:
        """Seconds from the step down to the first frame at or below ``fraction``."""
        reached = np.flatnonzero(self.progress[self.release_frame :] <= fraction)
        return float(reached[0] + 1) / self.frame_rate


def step_response(
    engine: Engine,
    tau_s: float | TimeConstants,
    space: SmoothingSpace,
    frame_rate: int,
    *,
    emotion: str = "happiness",
    shape: str = "mouthSmileLeft",
    hold_s: float = 3.0,
) -> StepResponse:
    """Drive a one-avatar ``Animator`` frame by frame through neutral -> ``emotion`` ->
    neutral; ``hold_s`` must be long enough for the face to settle (many time constants)."""
    table = AvatarTable(1, initial_ids=["default"])
    animator = Animator(table, engine, tau_s=tau_s, space=space)
    column = ARKIT_INDEX[shape]
    period_s = 1.0 / frame_rate
    frames = round(hold_s * frame_rate)
    for _ in range(frames):  # settle on the neutral face (blendshape space glides from zeros)
        animator.step(period_s)
    neutral = float(table.weights[0, column])
    weights = np.empty(2 * frames, dtype=np.float32)
    for phase, vad in enumerate((emotion_to_vad(emotion), np.zeros(3, dtype=np.float32))):
        table.set_target(0, (float(vad[0]), float(vad[1]), float(vad[2])), now_s=0.0)
        for frame in range(phase * frames, (phase + 1) * frames):
            animator.step(period_s)
            weights[frame] = table.weights[0, column]
    return StepResponse(weights, frame_rate, frames, neutral, float(weights[frames - 1]))


def render(engine: Engine, config: BridgeConfig, path: Path) -> list[str]:
    """Draw the default config's step response at ``PLOT_FRAME_RATES`` beside the single
    time constant of earlier versions; returns one line per curve with its crossings."""
    figure = _figure(FIGSIZE_IN, DPI)
    ax = figure.add_axes((0.08, 0.12, 0.62, 0.78))
    times, space = time_constants(config.smoothing), config.smoothing.space
    lines = []
    curves: list[tuple[str, float | TimeConstants, int]] = [
        (f"attack/release, {fps} fps", times, fps) for fps in PLOT_FRAME_RATES]
    curves.append((f"one tau {LEGACY_TAU_S * 1000:g} ms, 60 fps", LEGACY_TAU_S, 60))
    for label, tau_s, fps in curves:
        response = step_response(engine, tau_s, space, fps)
        phase_s = response.phase_s()
        rising = np.arange(len(phase_s)) < response.release_frame
        rise = rising & (phase_s <= SHOWN_RISE_S)
        fall = ~rising & (phase_s <= SHOWN_FALL_S)
        # The held apex is left out: the fall is drawn right after the first second of the rise.
        x = np.concatenate(([0.0], phase_s[rise], SHOWN_RISE_S + phase_s[fall]))
        y = np.concatenate(([0.0], response.progress[rise], response.progress[fall]))
        ax.step(x, y, "--" if isinstance(tau_s, float) else "-", where="post", label=label,
                linewidth=1.2)
        lines.append(f"{label}: rise to 63% {response.rise_s() * 1000:.1f} ms, "
                     f"fall to 37% {response.fall_s() * 1000:.1f} ms")
    for level in (RISE_FRACTION, FALL_FRACTION):
        ax.axhline(level, color="grey", linewidth=0.6, linestyle=":")
    ax.axvline(SHOWN_RISE_S, color="black", linewidth=0.6)
    ticks = np.arange(0.0, SHOWN_RISE_S + SHOWN_FALL_S + 0.01, 0.25)
    ax.set_xticks(ticks, [f"{t:g}" if t < SHOWN_RISE_S else f"{t - SHOWN_RISE_S:g}"
                          for t in ticks])
    ax.set_xlim(-0.05, SHOWN_RISE_S + SHOWN_FALL_S)
    ax.set_xlabel("seconds since happiness was set  |  seconds since neutral was set")
    ax.set_ylabel("mouthSmileLeft, neutral = 0, settled = 1")
    ax.set_title(f"Step response, {space} space: attack {times.face.attack_s * 1000:g} ms, "
                 f"release {times.face.release_s * 1000:g} ms")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    figure.text(0.72, 0.12, "\n".join(line.replace(": ", ":\n  ") for line in lines),
                fontsize=7, va="bottom")
    _save(figure, path, DPI)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vadbridge.tools.step_plot",
        description="Draw the default smoothing's step response (a smile rising and fading) "
        "with the bundled model (needs matplotlib).",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    engine, _ = load_model()
    try:
        lines = render(engine, BridgeConfig(), args.out)
    except MatplotlibMissingError as error:
        print(f"step_plot: {error}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
