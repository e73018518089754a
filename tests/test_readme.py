"""The README's configuration examples are real configs: every ```yaml block loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vadbridge.config import parse_config

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_config_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS)
def test_every_readme_yaml_block_is_a_valid_config(block: str) -> None:
    parse_config(block, "README.md")
