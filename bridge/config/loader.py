"""YAML → frozen dataclasses, validated once, before any socket opens.

``load_config(path)`` / ``parse_config(text, source)`` return a ``BridgeConfig`` or raise one
``ConfigError`` whose ``str()`` is a single line naming the file, line, key path, what was
expected and what was found (docs/DESIGN.md, "Packages"). The YAML is composed with PyYAML's
SafeLoader into nodes (never constructed into arbitrary objects) so every value keeps its line
number and duplicate keys can be caught. The schema the nodes are read along is in ``schema``
(and the modules it draws on); the reader walks its specs generically, knowing no key by name.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vadbridge.config.errors import ConfigError, Invalid, describe, lone_surrogate_at
from vadbridge.config.schema import BridgeConfig
from vadbridge.config.specs import Context, ListOf, Optional, Section, Spec, TypedList, spec_of

__all__ = ["MAX_CONFIG_BYTES", "format_config_error", "load_config", "parse_config"]

_NULL_TAG = "tag:yaml.org,2002:null"

MAX_CONFIG_BYTES = 1024 * 1024
"""A config larger than this is refused unread: room for ~15,000 one-line outputs, while a
runaway (``/dev/zero``, a log file named by mistake) fails at once instead of filling memory."""


def load_config(path: Path | None, *, environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """Read and validate ``path``; None = the built-in defaults (equal to config/default.yaml)."""
    if path is None:
        return BridgeConfig()
    source = str(path)
    data = _read_config_file(path, source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(source, "", None, "UTF-8 text", f"an undecodable byte at offset "
                          f"{error.start}") from None
    return parse_config(text, source, environ=environ)


def _read_config_file(path: Path, source: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``MAX_CONFIG_BYTES`` of them.

    Opened without blocking (a FIFO would wait for a writer) and checked with ``fstat`` on the
    open file, so ``/dev/zero``, a FIFO or a directory is refused instead of read forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        reason = error.strerror if isinstance(error, OSError) else "a NUL byte in the path"
        raise ConfigError(source, "", None, "a readable config file",
                          reason or type(error).__name__) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(source, "", None, "a regular config file", _file_kind(info))
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(source, "", None, f"a config of at most {MAX_CONFIG_BYTES} bytes",
                              f"{info.st_size} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES and (chunk := os.read(fd, MAX_CONFIG_BYTES + 1 - size)):
            chunks.append(chunk)  # the file may have grown since fstat: read one byte past
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as error:
        raise ConfigError(source, "", None, "a readable config file",
                          error.strerror or type(error).__name__) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(source, "", None, f"a config of at most {MAX_CONFIG_BYTES} bytes",
                          "a file that grew beyond it while read")
    return data


def _file_kind(info: os.stat_result) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(info.st_mode)), "not a regular file")


def parse_config(text: str, source: str = "<string>", *,
                 environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """Validate YAML ``text``; ``source`` names it in errors and anchors relative paths.

    An empty document (or only comments) is all defaults. ``environ`` (default ``os.environ``)
    supplies ``password_env`` secrets.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = ", ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(source, "", line, "valid YAML",
                          "a YAML error: " + " ".join(problem.split())) from None
    except yaml.reader.ReaderError as error:  # a control character such as NUL
        line = text.count("\n", 0, error.position) + 1
        raise ConfigError(source, "", line, "text without control characters",
                          f"the character U+{error.character:04X}") from None
    except yaml.YAMLError as error:
        raise ConfigError(source, "", None, "valid YAML", " ".join(str(error).split())) from None
    except RecursionError:
        raise ConfigError(source, "", None, "YAML nested a few levels deep",
                          "nesting too deep to read") from None
    ctx = Context(base_dir=Path(source).parent, environ=os.environ if environ is None else environ,
                  config_file=Path(source).resolve())
    reader = _Reader(source, ctx)
    if root is None or _is_null(root):
        return BridgeConfig()
    config: BridgeConfig = reader.dataclass(BridgeConfig, root, "")
    return config


class _Reader:
    """Walks composed YAML nodes along the schema; raises ConfigError at the first problem."""

    def __init__(self, source: str, ctx: Context) -> None:
        self.source = source
        self.ctx = ctx
        self._constructor = yaml.SafeLoader("")

    def error(self, node: yaml.Node, path: str, expected: str, got: str) -> ConfigError:
        return ConfigError(self.source, path, node.start_mark.line + 1, expected, got)

    def value(self, spec: Any, node: yaml.Node, path: str) -> Any:
        if isinstance(spec, Optional):
            return None if _is_null(node) else self.value(spec.inner, node, path)
        if isinstance(spec, Section):
            return spec.cls() if _is_null(node) else self.dataclass(spec.cls, node, path)
        if isinstance(spec, ListOf):
            return self.scalar_list(spec, node, path)
        if isinstance(spec, TypedList):
            items = self.items(node, path, spec.expected)
            return tuple(self.typed(spec.registry, item, f"{path}[{i}]")
                         for i, item in enumerate(items))
        return self.scalar(spec, node, path)

    def scalar(self, spec: Spec, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, spec.expected, _describe_node(node))
        try:
            value = self._constructor.construct_object(node)
        # PyYAML's scalar constructors leak ValueError, AttributeError (bad !!timestamp) and
        # friends on explicitly tagged garbage; whatever it is, the value is not acceptable.
        except Exception:
            shown = "a value" if spec.secret else describe(node.value)
            raise self.error(node, path, spec.expected,
                             f"{shown} (unreadable as {node.tag})") from None
        if isinstance(value, str) and (at := lone_surrogate_at(value)) is not None:
            # Only a YAML escape ("\ud800") makes one; every sink would fail to encode it.
            where = "" if spec.secret else f" at character {at}"
            raise self.error(node, path, spec.expected,
                             f"{spec.show(value)} with a lone surrogate{where} (not UTF-8 text)")
        try:
            return spec.check(value, self.ctx)
        except Invalid as invalid:
            raise self.error(node, path, invalid.expected, invalid.got) from None
        # A spec that trips over an odd value must still yield a one-line error.
        except (ArithmeticError, ValueError, TypeError) as error:
            raise self.error(node, path, spec.expected,
                             f"{spec.show(value)} ({type(error).__name__})") from None

    def items(self, node: yaml.Node, path: str, expected: str) -> list[yaml.Node]:
        if _is_null(node):  # `inputs:` with every entry commented out
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, path, expected, _describe_node(node))
        return list(node.value)

    def scalar_list(self, spec: ListOf, node: yaml.Node, path: str) -> tuple[Any, ...]:
        values: list[Any] = []
        for index, item in enumerate(self.items(node, path, spec.expected)):
            value = self.scalar(spec.item, item, f"{path}[{index}]")
            if spec.unique and value in values:
                first = f"{path}[{values.index(value)}]"
                raise self.error(item, f"{path}[{index}]", "each entry once",
                                 f"{describe(value)} again (first at {first})")
            values.append(value)
        return tuple(values)

    def typed(self, registry: Mapping[str, Any], node: yaml.Node, path: str) -> Any:
        known = ", ".join(registry)
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, f"a mapping with a type key ({known})",
                             _describe_node(node))
        pairs = self.pairs(node, path)
        if "type" not in pairs:
            raise self.error(node, f"{path}.type", f"a type key: one of {known}", "no type key")
        type_node = pairs["type"][1]
        type_name = self.scalar(_AnyScalar(f"one of {known}"), type_node, f"{path}.type")
        if not isinstance(type_name, str) or type_name not in registry:
            raise self.error(type_node, f"{path}.type", f"one of {known}", describe(type_name))
        return self.dataclass(registry[type_name], node, path, pairs=pairs, extra_keys=("type",))

    def pairs(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key → (key node, value node); rejects non-string and duplicate keys."""
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key_node.tag != "tag:yaml.org,2002:str":
                shown = _describe_node(key_node) if key is None else describe(key)
                raise self.error(key_node, _join(path, "?"), "a plain string key", shown)
            if key in result:
                first_line = result[key][0].start_mark.line + 1
                raise self.error(key_node, _join(path, key), "each key once in a mapping",
                                 f"a duplicate (first at line {first_line})")
            result[key] = (key_node, value_node)
        return result

    def dataclass(self, cls: Any, node: yaml.Node, path: str, *,
                  pairs: dict[str, tuple[yaml.Node, yaml.Node]] | None = None,
                  extra_keys: tuple[str, ...] = ()) -> Any:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path or "(top level)", "a mapping", _describe_node(node))
        if pairs is None:
            pairs = self.pairs(node, path)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, (key_node, _) in pairs.items():
            if key not in fields and key not in extra_keys:
                allowed = sorted([*fields, *extra_keys])
                hint = difflib.get_close_matches(key, allowed, n=1)
                got = f"unknown key {describe(key)}"
                got += f" (did you mean '{hint[0]}'?)" if hint else ""
                raise self.error(key_node, _join(path, _key_text(key)),
                                 "one of the keys " + ", ".join(allowed), got)
        values: dict[str, Any] = {}
        for name, (_, value_node) in pairs.items():
            if name in fields:
                values[name] = self.value(spec_of(fields[name]), value_node, _join(path, name))
        finish = getattr(cls, "_finish", None)
        if finish is not None:
            try:
                finish(values, self.ctx)
            except Invalid as invalid:
                target, at_path = _locate(node, path, invalid.at)
                raise self.error(target, at_path, invalid.expected, invalid.got) from None
        return cls(**values)


class _AnyScalar(Spec):
    """Accepts any scalar (used to read a ``type`` key before knowing its class)."""

    def __init__(self, expected: str) -> None:
        self.expected = expected

    def check(self, value: object, ctx: Context) -> object:
        return value


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _describe_node(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return describe(node.value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _key_text(key: str) -> str:
    """A key as shown in a key path: bare when tame, quoted otherwise (keeps errors one line)."""
    if key and len(key) <= 40 and all(c.isalnum() or c in "_-" for c in key):
        return key
    return describe(key)


def _locate(node: yaml.Node, path: str, at: Sequence[str | int]) -> tuple[yaml.Node, str]:
    """The key path of ``at`` below ``path``, and the node there (or its deepest existing
    ancestor, when the value was a default) whose line the error shows."""
    for step in at:
        path = f"{path}[{step}]" if isinstance(step, int) else _join(path, step)
    for step in at:
        child: yaml.Node | None = None
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode) and step < len(node.value):
            child = node.value[step]
        elif isinstance(step, str) and isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
        if child is None:
            break
        node = child
    return node, path


def format_config_error(error: ConfigError) -> str:
    """The line ``vadbridge run`` prints before exiting 2."""
    return f"vadbridge: invalid config: {error}"
