"""What the panel may change, and how: the ``smoothing`` and ``liveliness`` sections, validated by
the config loader and applied through the reload path; Save writes them into a file.

A change from the page is a patch of those two sections. It is merged into the running values
and the two sections are read by ``parse_config`` as YAML, exactly as a file's would be, so a
refused value reads like a bad config key (``smoothing.attack_ms: expected a number >= 0, got
-5``). The candidate (the running config with the two new sections) then goes to
``apply``, the SIGHUP reload's own path (``Reloader.apply``, which merges the patch again into
the config running then): nothing else can change from the page, and no file is read or
written.

Save writes the running config's file again, with the panel's two sections, as
``<name>.panel.yaml`` beside it (so relative paths in it keep their meaning); the file the
bridge runs from is never touched. An existing ``.panel.yaml`` is first renamed to a numbered
``.bak`` (never overwritten), and the new file is written to a temporary file that replaces it
in one rename, after the whole text was validated as a config. Its mode is the config's.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vadbridge.config import (
    BridgeConfig,
    ConfigError,
    LivelinessConfig,
    SmoothingConfig,
    parse_config,
)
from vadbridge.files import write_replacing

__all__ = [
    "PANEL_SUFFIX",
    "TUNABLE",
    "Change",
    "SaveOutcome",
    "TuneOutcome",
    "Tuner",
    "candidate_config",
    "save_beside",
    "sections_of",
]

TUNABLE = ("smoothing", "liveliness")
"""The config sections the page may change: they take effect without a restart."""
PANEL_SUFFIX = ".panel.yaml"
_SOURCE = "<control panel>"
_MAX_BACKUPS = 1000
_REGIONS = ("upper", "lower")


@dataclass(frozen=True)
class TuneOutcome:
    """``error`` None = applied; otherwise the one-line reason nothing changed."""

    error: str | None = None


@dataclass(frozen=True)
class SaveOutcome:
    """Where Save wrote (file names only: the page is not told directory paths)."""

    error: str | None = None
    written: str | None = None
    backup: str | None = None


def smoothing_section(smoothing: SmoothingConfig) -> dict[str, Any]:
    """The keys a config file would hold for ``smoothing`` (``tau_ms`` or attack and release)."""
    section: dict[str, Any] = (
        {"tau_ms": smoothing.tau_ms} if smoothing.tau_ms is not None
        else {"attack_ms": smoothing.attack_ms, "release_ms": smoothing.release_ms}
    )
    section["space"] = smoothing.space
    for name in _REGIONS:
        region = getattr(smoothing, name)
        if region is not None:
            section[name] = {key: value for key in ("attack_ms", "release_ms")
                             if (value := getattr(region, key)) is not None}
    section["idle_timeout_s"] = smoothing.idle_timeout_s
    return section


def liveliness_section(liveliness: LivelinessConfig) -> dict[str, Any]:
    return {"blink": liveliness.blink, "breathing": liveliness.breathing,
            "blink_interval_s": list(liveliness.blink_interval_s), "seed": liveliness.seed}


def sections_of(config: BridgeConfig) -> dict[str, dict[str, Any]]:
    """The tunable sections of ``config`` as plain data (what the page shows, Save writes)."""
    return {"smoothing": smoothing_section(config.smoothing),
            "liveliness": liveliness_section(config.liveliness)}


def _merged(section: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` over ``section``; a key patched to null is removed (the key's default, or for
    ``tau_ms``, back to attack and release); a region (``upper``) is patched key by key."""
    merged = dict(section)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = _merged(dict(merged[key]), value) or None
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def candidate_config(running: BridgeConfig, changes: Mapping[str, Mapping[str, Any]]
                     ) -> BridgeConfig:
    """``running`` with ``changes`` (section name -> patch) merged into its tunable sections,
    validated by the loader; raises ``ConfigError`` (or ``ValueError`` for a section the page
    may not change)."""
    sections = sections_of(running)
    for name, patch in changes.items():
        if name not in sections:
            raise ValueError(f"{name}: not a section the panel changes ({', '.join(TUNABLE)})")
        sections[name] = _merged(sections[name], patch)
    parsed = parse_config(yaml.safe_dump(sections, sort_keys=False), _SOURCE, environ={})
    return dataclasses.replace(running, smoothing=parsed.smoothing, liveliness=parsed.liveliness)


def config_error_line(error: ConfigError) -> str:
    """A loader error without the file and line (the page's values have neither)."""
    where = f"{error.key_path}: " if error.key_path else ""
    return f"{where}expected {error.expected}, got {error.got}"


Change = Callable[[BridgeConfig], BridgeConfig]
"""The running config -> the candidate (``candidate_config`` with the page's patches)."""


class Tuner:
    """The panel's changes to a running bridge: ``tune`` (live) and ``save`` (a file).

    ``current()`` is the running config; ``apply(change)`` applies ``change(running config)``
    through the reload path and returns an error line or None; ``config_path`` is the running
    config's file (None: the built-in defaults, nothing to save beside).
    """

    def __init__(self, current: Callable[[], BridgeConfig],
                 apply: Callable[[Change], Awaitable[str | None]],
                 config_path: Path | None) -> None:
        self.current = current
        self._apply = apply
        self.config_path = config_path

    def settings(self) -> dict[str, dict[str, Any]]:
        return sections_of(self.current())

    @property
    def save_target(self) -> Path | None:
        return None if self.config_path is None else panel_path(self.config_path)

    async def tune(self, changes: Mapping[str, Mapping[str, Any]]) -> TuneOutcome:
        try:  # refused here with the page's words; applied below, merged into what runs then
            candidate_config(self.current(), changes)
        except ConfigError as error:
            return TuneOutcome(config_error_line(error))
        except ValueError as error:
            return TuneOutcome(str(error))
        return TuneOutcome(await self._apply(lambda running: candidate_config(running, changes)))

    def save(self) -> SaveOutcome:
        """Blocking file I/O: the caller runs it off the event loop."""
        if self.config_path is None:
            return SaveOutcome("no config file to save beside: the bridge runs on the built-in "
                               "defaults (start it with --config FILE)")
        return save_beside(self.config_path, self.settings())


def panel_path(config_path: Path) -> Path:
    """``x.yaml`` -> ``x.panel.yaml`` beside it (symlinks resolved: beside the real file); a
    ``.panel.yaml`` is its own target (it is backed up first)."""
    real = config_path.resolve()
    if real.name.endswith(PANEL_SUFFIX):
        return real
    return real.with_name(real.name.removesuffix(real.suffix) + PANEL_SUFFIX)


def save_beside(config_path: Path, sections: Mapping[str, Mapping[str, Any]]) -> SaveOutcome:
    """The config file at ``config_path`` with ``sections`` replacing its own, written to
    ``panel_path(config_path)`` (see the module doc)."""
    target = panel_path(config_path)
    try:
        original = config_path.read_text(encoding="utf-8")
        data = yaml.safe_load(original)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return SaveOutcome(f"cannot read {config_path.name}: {error}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return SaveOutcome(f"{config_path.name}: not a mapping at the top level")
    data.update({name: dict(section) for name, section in sections.items()})
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    name, new_name = (repr(path.name)[1:-1] for path in (config_path, target))  # one line each
    text = (f"# Written by the vadbridge control panel at {stamp}: {name} with the\n"
            f"# panel's {' and '.join(sections)} sections. Run it with --config {new_name}.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    try:  # never write what the bridge could not load
        parse_config(text, str(target))
    except ConfigError as error:
        return SaveOutcome(f"not saved: the result would not load: {error}")
    try:
        backup = _back_up(target)
        write_replacing(target, text, mode=config_path.stat().st_mode & 0o777)
    except OSError as error:
        return SaveOutcome(f"not saved: {error.strerror or error}")
    return SaveOutcome(written=target.name, backup=None if backup is None else backup.name)


def _back_up(target: Path) -> Path | None:
    """Copy an existing ``target`` to the first free ``<name>.<n>.bak`` (never over one)."""
    if not target.exists():
        return None
    for number in range(1, _MAX_BACKUPS + 1):
        backup = target.with_name(f"{target.name}.{number}.bak")
        if not backup.exists():
            with target.open("rb") as source, backup.open("xb") as copy:  # x: never overwrites
                shutil.copyfileobj(source, copy)
            shutil.copymode(target, backup)
            return backup
    raise OSError(f"{_MAX_BACKUPS} backups of {target.name} exist already; remove some")
