"""The layer rule (docs/DESIGN.md, "Layers"): the import graph reads bottom-up.

    model  <-  training
    model  <-  config  <-  core  <-  shell  <-  commands

A module may import its own layer and the layers below it, never one above, not even inside a
function. Two checks: every import statement in the source (at any depth), and a real import of
each layer's modules in a fresh interpreter in which the modules of every layer it may not use
raise ImportError (as the no-torch test blocks torch).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, frozenset[str]] = {
    "model": frozenset({"model"}),
    "training": frozenset({"model", "training"}),
    "config": frozenset({"model", "config"}),
    "core": frozenset({"model", "config", "core"}),
    "shell": frozenset({"model", "config", "core", "shell"}),
    "commands": frozenset({"model", "training", "config", "core", "shell", "commands"}),
}
# Inputs and outputs keep each protocol in one room: its pure parser or encoder (core) beside
# the source or sink that does the I/O (shell).
SHELL_MODULES = frozenset({
    "vadbridge.daemon", "vadbridge.wiring", "vadbridge.reload", "vadbridge.mqtt_session",
    "vadbridge.scheduling", "vadbridge.inputs.osc", "vadbridge.inputs.mqtt",
    "vadbridge.outputs.udp", "vadbridge.outputs.batch", "vadbridge.outputs.mqtt",
    "vadbridge.outputs.record",
    "vadbridge.outputs.ifacialmocap_sink", "vadbridge.outputs.vtube_studio_client",
})  # fmt: skip
PACKAGE_LAYERS = {"model": "model", "training": "training", "config": "config", "core": "core",
                  "inputs": "core", "outputs": "core", "web": "shell", "commands": "commands",
                  "tools": "commands", "benchmarks": "commands", "presets": "config"}


def layer_of(module: str) -> str:
    if module in SHELL_MODULES:
        return "shell"
    parts = module.split(".")
    if len(parts) == 1:
        return "model"  # the root package is the model card's API: it re-exports the model
    if parts[1] == "__main__":
        return "commands"
    return PACKAGE_LAYERS[parts[1]] if len(parts) > 2 or parts[1] in PACKAGE_LAYERS else "shell"


def _setuptools() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folder(package: str) -> Path:
    """Where ``package`` lives in the repository, by pyproject's package-dir mapping."""
    mapping = _setuptools()["package-dir"]
    prefix = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
    return REPO / mapping[prefix] / Path(*package[len(prefix):].split(".")[1:])


@cache
def source_modules() -> dict[str, Path]:
    """Every module of the installed package, named as installed, with its source file."""
    modules: dict[str, Path] = {}
    for package in _setuptools()["packages"]:
        for path in sorted(package_folder(package).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


def imported_modules(module: str, path: Path) -> set[str]:
    """The package's modules that ``module`` imports, at any depth of its source."""
    known = source_modules()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def test_the_package_list_names_every_package_folder() -> None:
    """setuptools' discovery does not follow a package-dir mapping: the list must be whole."""
    listed = {package_folder(package) for package in _setuptools()["packages"]}
    folders = {init.parent for top in ("bridge", "model", "training", "benchmarks", "config")
               for init in (REPO / top).rglob("__init__.py")}
    assert folders == listed
    assert len(source_modules()) > 80


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_no_module_imports_a_layer_above_its_own(layer: str) -> None:
    wrong = [
        f"{module} ({layer}) imports {target} ({layer_of(target)})"
        for module, path in source_modules().items() if layer_of(module) == layer
        for target in sorted(imported_modules(module, path))
        if layer_of(target) not in ALLOWED[layer]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_model_and_training_import_nothing_of_the_bridge() -> None:
    for module, path in source_modules().items():
        if module.startswith(("vadbridge.model", "vadbridge.training")):
            allowed = ("vadbridge.model", "vadbridge.training") if "training" in module else (
                "vadbridge.model",)
            assert all(target.startswith(allowed) for target in imported_modules(module, path)), (
                module, sorted(imported_modules(module, path)))


def test_there_is_no_import_cycle() -> None:
    graph = {module: imported_modules(module, path) for module, path in source_modules().items()}
    # A package's __init__ is executed before any of its modules: that edge is implicit, and
    # a module importing its own package's re-exports is not a cycle of the code.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target):], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


_IMPORT_WITH_HIGHER_LAYERS_BLOCKED = textwrap.dedent("""
    import importlib, json, sys

    modules, blocked = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))

    class BlockHigherLayers:
        def find_spec(self, name, path=None, target=None):
            if name in blocked:
                raise ImportError(f"{name} is above this layer")
            return None

    sys.meta_path.insert(0, BlockHigherLayers())
    for module in modules:
        importlib.import_module(module)
    loaded = sorted(m for m in sys.modules if m in blocked)
    assert not loaded, loaded
    print(len(modules), "imported")
""")


@pytest.mark.parametrize("layer", ["model", "training", "config", "core", "shell"])
def test_each_layer_imports_with_the_layers_above_it_blocked(layer: str) -> None:
    import json

    modules = sorted(m for m in source_modules() if layer_of(m) == layer
                     and not m.endswith("__main__") and m != "vadbridge.model.network")
    blocked = sorted(m for m in source_modules() if layer_of(m) not in ALLOWED[layer])
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITH_HIGHER_LAYERS_BLOCKED, json.dumps(modules),
         json.dumps(blocked)], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{len(modules)} imported"
