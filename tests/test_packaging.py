"""The wheel: one import name, ``vadbridge``, with its weights, example configs and py.typed;
installed on its own, it runs from any folder, whatever a user's own ``model.py`` is called."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (path,) = out.glob("vadbridge-*.whl")
    return path


def test_the_wheel_installs_one_top_level_package_with_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(top_level).decode().split() == ["vadbridge"]
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"vadbridge"}
    for expected in ("vadbridge/py.typed", "vadbridge/model/weights/vadbridge-v1.npz",
                     "vadbridge/model/weights/vadbridge-v2.npz",
                     "vadbridge/presets/default.yaml", "vadbridge/presets/vseeface.yaml",
                     "vadbridge/commands/__init__.py", "vadbridge/benchmarks/suite.py"):
        assert expected in names, expected


def test_the_installed_wheel_runs_beside_a_users_model_and_bridge_modules(
    wheel: Path, tmp_path: Path
) -> None:
    """A fresh environment holding only the wheel: ``python -S`` skips site-packages (and so
    the editable install of the repo); the dependencies come from this environment's
    site-packages as a plain path entry, whose .pth files are not read."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # a pure wheel installs by unpacking
    work = tmp_path / "work"
    work.mkdir()
    for shadow in ("model.py", "bridge.py", "config.py", "training.py"):
        (work / shadow).write_text(f"raise ImportError('the user\\'s {shadow} was imported')\n")
    dependencies = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{site}:{dependencies}", "PATH": "/usr/bin:/bin"}
    probe = textwrap.dedent("""
        import numpy as np
        import vadbridge
        from vadbridge import load_model, predict, emotion_to_vad, enforce_symmetry
        assert vadbridge.__file__.startswith(sys.argv[1]), vadbridge.__file__
        model, meta = load_model()
        face = enforce_symmetry(predict(model, emotion_to_vad("happiness")))
        assert face.shape == (52,) and 0.0 <= face.min() and face.max() <= 1.0
        print("api ok")
    """)
    result = subprocess.run([sys.executable, "-S", "-c", "import sys\n" + probe, str(site)],
                            cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "api ok"
    check = subprocess.run([sys.executable, "-S", "-m", "vadbridge", "run", "--check"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    first = check.stdout.splitlines()[0]
    assert first.startswith(f"{site}/vadbridge/presets/default.yaml: OK"), check.stdout
