"""``vadbridge --help`` and every ``vadbridge <command> --help`` speak to users: a one-line
description, a help text for every option and the default of every option that has one;
``--version``; and the vocabulary lists ``infer --list-emotions`` / ``--list-shapes``."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from models import run_cli

import vadbridge
from vadbridge.commands import build_parser
from vadbridge.model import api
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.emotions import ALIASES, BASIC_EMOTIONS, emotion_to_vad, known_emotion_names

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"infer", "evaluate", "dataset", "train", "run", "send", "replay", "preview", "export",
            "bench"}
# Defaults that say nothing: argparse's "not given" and a flag's "off".
NO_DEFAULT = (None, False, argparse.SUPPRESS)


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv, "--help")
    assert (code, err) == (0, ""), err
    return out


def option_entries(text: str) -> dict[str, str]:
    """Each option's help entry (invocation, help and its wrapped lines, whitespace collapsed),
    keyed by its first option string."""
    entries: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if line.startswith("  -"):
            key = line.split()[0].rstrip(",")
            entries[key] = line
        elif key is not None and line.startswith("   ") and line.strip():
            entries[key] += " " + line
        else:
            key = None
    return {flag: " ".join(entry.split()) for flag, entry in entries.items()}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # argparse wraps help at the terminal width; a wide one keeps each entry on few lines.
    monkeypatch.setenv("COLUMNS", "200")


def test_every_command_is_wired() -> None:
    assert set(subparsers()) == COMMANDS


def test_the_top_level_help_describes_the_tool_and_lists_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_text(capsys)
    description = build_parser().description
    assert description and "``" not in description
    assert " ".join(description.split()) in " ".join(text.split())
    for command in COMMANDS:
        assert re.search(rf"^ +{command} +\S", text, re.MULTILINE), f"{command} has no summary"
    assert "--version" in option_entries(text)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_description_is_one_line_written_for_users(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    description = subparsers()[command].description
    assert description and description.strip(), f"{command} has no description"
    assert "\n" not in description
    assert "``" not in description
    assert not re.match(rf"\W*vadbridge {command}\W*:", description)
    assert "docs/" not in description and ".md" not in description
    text = help_text(capsys, command)
    assert " ".join(description.split()) in " ".join(text.split())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_and_shows_its_default(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(capsys, command)
    entries = option_entries(text)
    for action in subparsers()[command]._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        flag = action.option_strings[0]
        assert action.help and action.help is not argparse.SUPPRESS, f"{flag} has no help"
        entry = entries[flag]
        if action.default not in NO_DEFAULT:
            assert f"(default: {action.default})" in entry, entry
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "docs/" not in text and "``" not in text


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--version") == (0, f"vadbridge {vadbridge.__version__}\n", "")


def test_the_package_version_is_the_one_pyproject_declares() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == vadbridge.__version__


@pytest.fixture
def no_bundled_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The lists must not load a model: make loading the bundled one fail."""
    monkeypatch.setattr(api, "DEFAULT_CHECKPOINT", tmp_path / "missing.npz")


@pytest.mark.usefixtures("no_bundled_model")
def test_list_emotions_prints_every_name_with_its_vad(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "infer", "--list-emotions")
    assert (code, err) == (0, "")
    header, *lines = out.splitlines()
    assert header.split() == ["name", "valence", "arousal", "dominance", "source"]
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert list(rows) == known_emotion_names()
    for name in ("happiness", *BASIC_EMOTIONS, "happy", "in_love"):
        vad = [float(x) for x in rows[name][:3]]
        np.testing.assert_allclose(vad, emotion_to_vad(name), atol=0.005)
    assert " ".join(rows["happy"][3:]) == f"alias of {ALIASES['happy']}"


@pytest.mark.usefixtures("no_bundled_model")
def test_list_shapes_prints_the_52_names_in_model_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "infer", "--list-shapes")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 52
    assert lines[0].split() == ["0", ARKIT_NAMES[0]]
    assert [line.split() for line in lines] == [[str(i), n] for i, n in enumerate(ARKIT_NAMES)]
