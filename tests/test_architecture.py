"""Data flows one way: no module imports one of a higher layer (docs/architecture.md),
and no module of zoo/ or training/ outgrows about 400 lines."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom up; a module may import its own layer and those below. Prefixes: a package
# holds its modules.
LAYERS = (
    ("foundation", ("zoo.stack", "zoo.io", "zoo.preprocessing", "zoo.corruptions", "zoo.metrics", "zoo.weights")),
    ("quantizers", ("zoo.fused", "zoo.quantizers")),
    ("blocks", ("zoo.blocks",)),
    ("model families", ("zoo.models",)),
    ("task kinds", ("zoo.kinds",)),
    ("registry", ("zoo.registry",)),
    ("users of the registry", ("zoo.complexity", "zoo.tflite", "zoo.openvino_ir", "zoo.deployment",
                               "zoo.training")),
    ("entry points", ("zoo.cli", "zoo")),
)
# Where the installed package's modules live in the repository (setup.py's package_dir).
FOLDERS = {"zoo": ROOT / "zoo", "zoo.training": ROOT / "training"}


def modules():
    """(dotted name, path) of every module of zoo/ and training/."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((package, *parts))] = path
    return found


def layer(name: str) -> int:
    """The layer of module `name`: that of the longest prefix listed."""
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name} is in no layer of tests/test_architecture.py; add it where it belongs"
    return max(matches)[1]


def imported(name: str, path: Path):
    """Every zoo module `path` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "zoo")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: the package, up level - 1 folders, then the module
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "zoo":
                continue
            for alias in node.names:  # `from zoo import kinds` imports the module zoo.kinds
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


MODULES = modules()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_higher_layer(name):
    upward = [(target, LAYERS[layer(target)][0]) for target in set(imported(name, MODULES[name]))
              if layer(target) > layer(name)]
    assert not upward, f"{name} ({LAYERS[layer(name)][0]}) imports from a higher layer: {sorted(upward)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_outgrows_400_lines(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= 420, f"split {MODULES[name]}"
