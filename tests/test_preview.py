"""``vadbridge preview``: face geometry rules, real PNG files, argument errors."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from models import FLOAT32_PATH_ATOL, seeded_checkpoint

from vadbridge.commands import main
from vadbridge.model.arkit import ARKIT_INDEX, enforce_symmetry
from vadbridge.model.checkpoint import load_engine
from vadbridge.model.emotions import BASIC_EMOTIONS
from vadbridge.model.engine import NumpyMLP
from vadbridge.tools.preview import grid_panels, vad_slice
from vadbridge.tools.preview_draw import (
    GRID_FIGSIZE_IN,
    MAP_FIGSIZE_IN,
    SINGLE_FIGSIZE_IN,
    map_labels,
    pixel_size,
)
from vadbridge.tools.preview_face import face_geometry

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 40  # small images keep the rendering tests fast; sizes scale exactly with dpi


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seeded_checkpoint(tmp_path_factory.mktemp("model") / "model.npz", seed=3)


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> NumpyMLP:
    return load_engine(checkpoint)[0]


def _weights(**named: float) -> np.ndarray:
    """52 weights, zero except ``named``; a stem without Left/Right sets both sides."""
    weights = np.zeros(52, dtype=np.float32)
    for stem, value in named.items():
        names = [stem] if stem in ARKIT_INDEX else [stem + "Left", stem + "Right"]
        for name in names:
            weights[ARKIT_INDEX[name]] = value
    return weights


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    (crc,) = struct.unpack(">I", data[29:33])
    assert crc == zlib.crc32(data[12:29])
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return np.asarray(imread(path), dtype=np.float32)


def _preview(args: list[str], checkpoint: Path) -> int:
    return main(["preview", "--checkpoint", str(checkpoint), "--dpi", str(DPI), *args])


# --- geometry ------------------------------------------------------------------------------------


def test_neutral_face_is_mirror_symmetric() -> None:
    face = face_geometry(_weights())
    right_brow, left_brow = face.brows
    np.testing.assert_allclose(left_brow * [-1, 1], right_brow)
    right_eye, left_eye = face.eyes
    np.testing.assert_allclose(left_eye.upper_lid * [-1, 1], right_eye.upper_lid)
    assert left_eye.iris_centre == pytest.approx(
        (-right_eye.iris_centre[0], right_eye.iris_centre[1])
    )
    np.testing.assert_allclose(face.mouth.upper_lip[::-1] * [-1, 1], face.mouth.upper_lip)


def test_subject_left_is_drawn_on_the_viewers_right() -> None:
    face = face_geometry(_weights(eyeBlinkLeft=1.0))
    right_eye, left_eye = face.eyes
    assert left_eye.upper_lid[:, 0].min() > 0 > right_eye.upper_lid[:, 0].max()
    assert left_eye.opening == 0.0 and right_eye.opening > 0.1


def test_smile_lifts_and_frown_lowers_the_mouth_corners() -> None:
    neutral = face_geometry(_weights()).mouth
    smile = face_geometry(_weights(mouthSmile=1.0)).mouth
    frown = face_geometry(_weights(mouthFrown=1.0)).mouth
    assert min(smile.corner_lift) > 0.1 > max(neutral.corner_lift) == 0.0
    assert max(frown.corner_lift) < -0.1
    assert smile.upper_lip[0, 1] > neutral.upper_lip[0, 1] > frown.upper_lip[0, 1]


def test_jaw_open_and_lower_lip_down_open_the_mouth() -> None:
    closed = face_geometry(_weights()).mouth.opening
    jaw = face_geometry(_weights(jawOpen=1.0)).mouth.opening
    lips = face_geometry(_weights(mouthLowerDown=1.0, mouthUpperUp=1.0)).mouth.opening
    held = face_geometry(_weights(jawOpen=1.0, mouthClose=1.0)).mouth.opening
    assert closed < 0.02 < lips < jaw
    assert held == pytest.approx(closed)


def test_pucker_narrows_and_stretch_widens_the_mouth() -> None:
    neutral = face_geometry(_weights()).mouth.width
    assert face_geometry(_weights(mouthPucker=1.0)).mouth.width < 0.7 * neutral
    assert face_geometry(_weights(mouthStretch=1.0)).mouth.width > 1.2 * neutral


def test_blink_closes_wide_opens_and_squint_narrows_the_eyes() -> None:
    def opening(**named: float) -> float:
        return face_geometry(_weights(**named)).eyes[1].opening

    assert opening(eyeBlink=1.0) == 0.0
    assert opening(eyeWide=1.0) > opening() > opening(eyeSquint=1.0) > opening(eyeBlink=0.9)


def test_gaze_moves_the_iris() -> None:
    neutral = face_geometry(_weights()).eyes[1].iris_centre
    up = face_geometry(_weights(eyeLookUp=1.0)).eyes[1].iris_centre
    out_left = face_geometry(_weights(eyeLookOutLeft=1.0)).eyes[1].iris_centre
    in_left = face_geometry(_weights(eyeLookInLeft=1.0)).eyes[1].iris_centre
    assert up[1] > neutral[1]
    assert out_left[0] > neutral[0] > in_left[0]  # the left eye looks out towards +x


def test_brows_follow_inner_up_outer_up_and_down() -> None:
    neutral = face_geometry(_weights()).brows[1]
    inner_up = face_geometry(_weights(browInnerUp=1.0)).brows[1]
    outer_up = face_geometry(_weights(browOuterUp=1.0)).brows[1]
    down = face_geometry(_weights(browDown=1.0)).brows[1]
    assert inner_up[0, 1] > neutral[0, 1] + 0.1 and inner_up[2, 1] == neutral[2, 1]
    assert outer_up[2, 1] > neutral[2, 1] + 0.1
    assert down[0, 1] < neutral[0, 1] - 0.1 and down[0, 0] < neutral[0, 0]


def test_cheeks_and_sneer_lines() -> None:
    neutral = face_geometry(_weights())
    puffed = face_geometry(_weights(cheekPuff=1.0))
    squint = face_geometry(_weights(cheekSquint=1.0))
    sneer = face_geometry(_weights(noseSneerLeft=1.0))
    assert puffed.cheeks[0].radius > neutral.cheeks[0].radius
    assert squint.cheeks[1].blush > neutral.cheeks[1].blush
    assert neutral.sneer_lines[1].shape == (0, 2) and sneer.sneer_lines[0].shape == (0, 2)
    assert sneer.sneer_lines[1].shape == (2, 2) and sneer.sneer_lines[1][:, 0].min() > 0


def test_geometry_rejects_a_wrong_number_of_weights() -> None:
    with pytest.raises(ValueError, match="52 blendshape weights"):
        face_geometry(np.zeros(51))


def test_grid_panels_are_the_eight_basic_emotions(engine: NumpyMLP) -> None:
    panels = grid_panels(engine)
    names = [panel.title.split("\n")[0] for panel in panels]
    assert names == [
        "neutral",
        "happiness",
        "surprise",
        "sadness",
        "anger",
        "disgust",
        "fear",
        "contempt",
    ]
    neutral = enforce_symmetry(engine.forward(np.zeros((1, 3), np.float32)))[0]
    # batch-8 vs batch-1: BLAS may round the two apart
    np.testing.assert_allclose(panels[0].weights, neutral, rtol=0, atol=FLOAT32_PATH_ATOL)


def test_vad_slice_rows_are_arousal_and_columns_valence(engine: NumpyMLP) -> None:
    index = ARKIT_INDEX["jawOpen"]
    values = vad_slice(engine, index, dominance=0.5, resolution=5)
    expected = enforce_symmetry(engine.forward(np.array([[-0.5, 1.0, 0.5]], np.float32)))[0, index]
    assert values.shape == (5, 5)
    assert values[4, 1] == pytest.approx(float(expected), abs=FLOAT32_PATH_ATOL)  # batch vs 1 row


def test_map_labels_merge_shared_points_and_keep_neighbours_apart() -> None:
    labels = map_labels(dict(BASIC_EMOTIONS))
    by_text = {text: (point, below, left) for point, text, below, left in labels}
    assert len(labels) == 7  # fear and anger share (-0.7, 0.8)
    assert by_text["anger (D +0.7) / fear (D -0.3)"][0] == (-0.7, 0.8)
    assert by_text["disgust (D +0.4)"][1] is False and by_text["contempt (D +0.8)"][1] is True
    assert by_text["happiness (D +0.5)"][2] is True  # right edge: label to the left


# --- rendering -----------------------------------------------------------------------------------


def test_emotion_preview_is_a_png_of_the_figure_size(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "happy.png"
    assert _preview(["--emotion", "happiness", "--out", str(out)], checkpoint) == 0
    assert _png_size(out) == pixel_size(SINGLE_FIGSIZE_IN, DPI) == (440, 320)
    assert f"wrote {out} (440x320 px)" in capsys.readouterr().out


def test_different_emotions_give_different_images_and_the_same_one_the_same(
    checkpoint: Path, tmp_path: Path
) -> None:
    paths = {name: tmp_path / f"{name}.png" for name in ("happiness", "sadness", "again")}
    for name, path in paths.items():
        emotion = "happiness" if name == "again" else name
        assert _preview(["--emotion", emotion, "--out", str(path)], checkpoint) == 0
    happy, sad, again = (_pixels(path) for path in paths.values())
    np.testing.assert_array_equal(happy, again)
    changed = np.abs(happy - sad).max(axis=-1) > 0.1
    assert changed.mean() > 0.005  # a visible share of the picture differs


def test_vad_preview_works_and_clips(checkpoint: Path, tmp_path: Path) -> None:
    clipped, edge = tmp_path / "clipped.png", tmp_path / "edge.png"
    assert _preview(["--vad", "3", "0", "-2", "--out", str(clipped)], checkpoint) == 0
    assert _preview(["--vad", "1", "0", "-1", "--out", str(edge)], checkpoint) == 0
    assert _png_size(clipped) == pixel_size(SINGLE_FIGSIZE_IN, DPI)


def test_grid_sheet_size(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert _preview(["--grid", "--out", str(out)], checkpoint) == 0
    assert _png_size(out) == pixel_size(GRID_FIGSIZE_IN, DPI) == (640, 340)


def test_map_size_and_dominance_changes_it(checkpoint: Path, tmp_path: Path) -> None:
    low, high = tmp_path / "low.png", tmp_path / "high.png"
    assert _preview(["--map", "JawOpen", "--dominance", "-1", "--out", str(low)], checkpoint) == 0
    assert _preview(["--map", "jawopen", "--dominance", "1", "--out", str(high)], checkpoint) == 0
    assert _png_size(low) == pixel_size(MAP_FIGSIZE_IN, DPI) == (320, 280)
    assert np.abs(_pixels(low) - _pixels(high)).max() > 0.1


def test_default_output_name_for_a_map(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _preview(["--map", "mouthSmileLeft"], checkpoint) == 0
    assert _png_size(tmp_path / "map-mouthSmileLeft.png") == pixel_size(MAP_FIGSIZE_IN, DPI)


# --- errors --------------------------------------------------------------------------------------


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--map", "mouthSmil"], "did you mean mouthSmileLeft"),
        (["--map", "smile", "--dominance", "0"], "unknown blendshape 'smile'"),
        (["--map", "nope"], "unknown blendshape 'nope' (see `vadbridge infer --list-shapes`)"),
        (["--emotion", "happiness", "--dominance", "0.5"], "--dominance applies to --map only"),
        (["--map", "jawOpen", "--dominance", "2"], "--dominance must be in [-1, 1]"),
        (["--vad", "0", "0", "0", "--intensity", "0.5"], "--intensity applies to"),
        (["--emotion", "happiness", "--intensity", "1.5"], "--intensity must be in [0, 1]"),
        (["--emotion", "hapiness"], "unknown emotion 'hapiness'"),
        (["--emotion", "glee"], "`vadbridge infer --list-emotions` lists them all"),
        (["--emotion", "happiness", "--out", "face.jpg"], "--out must end in .png"),
        (["--emotion", "happiness", "--dpi", "5000"], "--dpi must be in"),
        (["--vad", "nan", "0", "0"], "--vad values must be finite"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    checkpoint: Path, extra: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _usage_error(["preview", "--checkpoint", str(checkpoint), *extra], capsys)
    assert expected in line


def test_missing_checkpoint_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(["preview", "--grid", "--checkpoint", str(tmp_path / "none.npz")], capsys)
    assert "checkpoint not found" in line


def test_missing_output_directory_exits_2(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no" / "face.png"
    line = _usage_error(
        ["preview", "--checkpoint", str(checkpoint), "--grid", "--out", str(out)], capsys
    )
    assert "does not exist" in line


def test_no_mode_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["preview"])
    assert exit_info.value.code == 2
    assert "one of the arguments" in capsys.readouterr().err


def test_without_matplotlib_it_says_how_to_install_it(
    checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` now fails
    out = tmp_path / "face.png"
    line = _usage_error(
        ["preview", "--checkpoint", str(checkpoint), "--grid", "--out", str(out)], capsys
    )
    assert "matplotlib is not installed" in line and "pip install 'vadbridge[preview]'" in line
    assert not out.exists()
