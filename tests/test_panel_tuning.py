"""What the control panel may change (issue 15, item 4): smoothing and liveliness, validated by the
config loader (errors read like a bad config key), applied through one ``apply`` call; and Save,
which writes ``<name>.panel.yaml`` beside the running config, never over anything without a
backup."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
import yaml

from vadbridge.config import BridgeConfig, ConfigError, load_config, parse_config
from vadbridge.web.tuning import (
    Change,
    Tuner,
    candidate_config,
    config_error_line,
    panel_path,
    save_beside,
    sections_of,
)

RUNNING = parse_config("frame_rate: 50\nsmoothing: {attack_ms: 120, release_ms: 300}\n"
                       "inputs: []\n", "<test>")


def refusal(changes: dict[str, dict[str, object]]) -> str:
    with pytest.raises(ConfigError) as caught:
        candidate_config(RUNNING, changes)
    return config_error_line(caught.value)


def test_a_change_lands_in_its_section_and_nothing_else_changes() -> None:
    new = candidate_config(RUNNING, {"smoothing": {"attack_ms": 80}})
    assert (new.smoothing.attack_ms, new.smoothing.release_ms) == (80.0, 300.0)
    assert new.frame_rate == 50 and new.inputs == () and new.outputs == RUNNING.outputs


def test_a_refused_value_reads_like_a_bad_config_key() -> None:
    assert refusal({"smoothing": {"attack_ms": -5}}) == (
        "smoothing.attack_ms: expected a number >= 0, got -5")
    assert refusal({"smoothing": {"release_ms": "slow"}}) == (
        "smoothing.release_ms: expected a number >= 0, got 'slow'")
    assert refusal({"liveliness": {"blink": "yes"}}) == (
        "liveliness.blink: expected true or false, got 'yes'")
    assert "got unknown key 'atack_ms' (did you mean 'attack_ms'?)" in refusal(
        {"smoothing": {"atack_ms": 1}})


def test_one_time_constant_replaces_the_pair_and_back() -> None:
    single = candidate_config(RUNNING, {"smoothing": {"tau_ms": 90, "attack_ms": None,
                                                      "release_ms": None}})
    assert single.smoothing.tau_ms == 90.0 and single.smoothing.attack_s == 0.09
    assert "either tau_ms" in refusal({"smoothing": {"tau_ms": 90}})  # with the pair still set
    back = candidate_config(single, {"smoothing": {"tau_ms": None, "attack_ms": 50,
                                                   "release_ms": 200}})
    assert (back.smoothing.tau_ms, back.smoothing.attack_ms, back.smoothing.release_ms) == (
        None, 50.0, 200.0)


def test_regions_need_blendshape_space_as_in_a_file() -> None:
    assert "only with space: blendshapes" in refusal({"smoothing": {"upper": {"attack_ms": 40}}})
    new = candidate_config(RUNNING, {"smoothing": {"space": "blendshapes",
                                                   "upper": {"attack_ms": 40}}})
    assert new.smoothing.upper_s == (0.04, 0.3)
    cleared = candidate_config(new, {"smoothing": {"upper": {"attack_ms": None}}})
    assert cleared.smoothing.upper is None  # a region left with no key is gone


def test_liveliness_switches_on_and_off() -> None:
    lively = candidate_config(RUNNING, {"liveliness": {"blink": True}})
    assert lively.liveliness.enabled and not lively.liveliness.breathing
    assert not candidate_config(lively, {"liveliness": {"blink": False}}).liveliness.enabled


def test_only_smoothing_and_liveliness_can_change() -> None:
    with pytest.raises(ValueError, match="not a section the panel changes"):
        candidate_config(RUNNING, {"outputs": {"host": "elsewhere"}})


def test_the_tuner_applies_a_valid_candidate_and_never_a_refused_one() -> None:
    applied: list[BridgeConfig] = []

    async def apply(change: Change) -> str | None:
        applied.append(change(RUNNING))
        return None

    tuner = Tuner(lambda: RUNNING, apply, None)
    refused = asyncio.run(tuner.tune({"smoothing": {"attack_ms": -1}}))
    assert refused.error == "smoothing.attack_ms: expected a number >= 0, got -1"
    assert applied == []
    assert asyncio.run(tuner.tune({"smoothing": {"attack_ms": 60}})).error is None
    assert applied[0].smoothing.attack_ms == 60.0


def test_without_a_config_file_there_is_nothing_to_save_beside() -> None:
    async def apply(change: Change) -> str | None:
        return None

    outcome = Tuner(lambda: RUNNING, apply, None).save()
    assert outcome.written is None and outcome.error is not None
    assert "built-in defaults" in outcome.error


# --- Save --------------------------------------------------------------------------------------

CONFIG_TEXT = """\
# my settings
frame_rate: 30
model: {checkpoint: weights.npz}   # relative to this file
smoothing: {attack_ms: 120}
inputs: []
outputs: [{type: record, path: take.csv}]
"""


@pytest.fixture
def config_file(tmp_path: Path, random_checkpoint: Path) -> Path:
    (tmp_path / "weights.npz").write_bytes(random_checkpoint.read_bytes())
    path = tmp_path / "my.yaml"
    path.write_text(CONFIG_TEXT)
    path.chmod(0o640)
    return path


def test_save_writes_the_panel_file_beside_the_config_and_leaves_the_config_alone(
    config_file: Path,
) -> None:
    tuned = candidate_config(load_config(config_file), {"smoothing": {"attack_ms": 70},
                                                        "liveliness": {"blink": True}})
    outcome = save_beside(config_file, sections_of(tuned))
    assert outcome.error is None and outcome.written == "my.panel.yaml" and outcome.backup is None
    assert config_file.read_text() == CONFIG_TEXT
    written = config_file.with_name("my.panel.yaml")
    saved = load_config(written)
    assert saved.smoothing.attack_ms == 70.0 and saved.liveliness.blink
    assert saved.frame_rate == 30 and saved.model == tuned.model  # the rest as in the file
    assert saved.outputs == tuned.outputs  # relative paths keep their meaning: same folder
    assert stat.S_IMODE(written.stat().st_mode) == 0o640  # it may hold what the config holds
    assert written.read_text().startswith("# Written by the vadbridge control panel")


def test_save_never_overwrites_without_a_backup(config_file: Path) -> None:
    sections = sections_of(load_config(config_file))
    first = save_beside(config_file, sections)
    written = config_file.with_name(str(first.written))
    before = written.read_text()
    sections["smoothing"]["attack_ms"] = 10
    second = save_beside(config_file, sections)
    assert second.backup == "my.panel.yaml.1.bak"
    assert config_file.with_name(second.backup).read_text() == before
    assert load_config(written).smoothing.attack_ms == 10.0
    third = save_beside(config_file, sections)
    assert third.backup == "my.panel.yaml.2.bak"
    assert sorted(p.name for p in config_file.parent.glob("my.panel.yaml*")) == [
        "my.panel.yaml", "my.panel.yaml.1.bak", "my.panel.yaml.2.bak"]


def test_a_panel_file_saves_over_itself_after_a_backup(config_file: Path) -> None:
    panel_file = config_file.with_name(str(save_beside(
        config_file, sections_of(load_config(config_file))).written))
    assert panel_path(panel_file) == panel_file.resolve()
    outcome = save_beside(panel_file, sections_of(load_config(panel_file)))
    assert outcome.written == "my.panel.yaml" and outcome.backup == "my.panel.yaml.1.bak"


def test_a_result_that_would_not_load_is_not_written(config_file: Path) -> None:
    sections = sections_of(load_config(config_file))
    config_file.write_text(CONFIG_TEXT.replace("frame_rate: 30", "frame_rate: 3000"))
    outcome = save_beside(config_file, sections)
    assert outcome.error is not None and "frame_rate" in outcome.error
    assert not config_file.with_name("my.panel.yaml").exists()


def test_save_leaves_no_temporary_file_behind(config_file: Path) -> None:
    save_beside(config_file, sections_of(load_config(config_file)))
    assert sorted(os.listdir(config_file.parent)) == ["my.panel.yaml", "my.yaml", "weights.npz"]
    assert yaml.safe_load(config_file.with_name("my.panel.yaml").read_text())["frame_rate"] == 30
