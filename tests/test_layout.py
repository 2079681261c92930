"""The package reads as the pipeline: each layer imports only layers below it, the package's
own modules are imported at the top of a file (heavy libraries are the only in-function
imports), and no code or document cites an issue number or a file outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seisbert"

# Lowest first. A module may import its own layer or any lower one, never a higher one.
LAYERS = [
    ["seisbert", "config", "logs", "figures", "metrics"],  # foundations
    ["artifacts"],  # cache, paths, arrays
    ["data"],  # sources, records, splits, sequences
    ["features"],  # the stages, in pipeline order
    ["tokenizer"],
    ["vocabulary"],
    ["bundle"],
    ["pipeline"],
    ["model"],  # encoder, perceiver, heads, targets
    ["tasks", "baselines"],  # LightningModules; the supervised references
    ["analysis"],
    ["train"],
    ["inference"],
    ["study"],
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "seisbert"


def seisbert_imports(path: Path):
    """(line, imported module, inside a function) for every import of the package."""
    tree = ast.parse(path.read_text())
    in_function = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "seisbert"
        ):
            targets = (
                [node.module]
                if node.module != "seisbert"
                else [f"seisbert.{a.name}" for a in node.names]
            )
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "seisbert"]
        else:
            continue
        for target in targets:
            yield node.lineno, target, id(node) in in_function


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_module_and_package_has_a_layer():
    names = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert names <= set(RANK), (
        f"place {sorted(names - set(RANK))} in a layer of tests/test_layout.py"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    mine = layer_of(module_name(path))
    up = [
        f"line {line}: {target} ({layer_of(target)} is above {mine})"
        for line, target, _ in seisbert_imports(path)
        if RANK[layer_of(target)] > RANK[mine]
    ]
    assert not up, f"{path.relative_to(ROOT)} imports upward: {up}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_package_is_imported_at_the_top_of_a_file(path):
    hidden = [f"line {line}: {target}" for line, target, inside in seisbert_imports(path) if inside]
    assert not hidden, f"{path.relative_to(ROOT)} imports seisbert inside functions: {hidden}"


def test_the_layout_test_catches_an_upward_import(tmp_path):
    fake = tmp_path / "seisbert" / "data" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from seisbert.train.job import train_job\n")
    ((line, target, inside),) = list(seisbert_imports(fake))
    assert (line, target, inside) == (2, "seisbert.train.job", True)
    assert RANK[layer_of(target)] > RANK["data"]


CITATIONS = re.compile(
    r"\bissues? #?\d+\b|\bissue-\d+|the issue.s\b|DESIGN\.md|shared/(STYLE|synthetic)\.md",
    re.IGNORECASE,
)


def test_no_code_or_document_cites_issue_numbers_or_files_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".yaml", ".toml") or name == "tests/test_layout.py":
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if CITATIONS.search(line):
                found.append(f"{name}:{i}: {line.strip()[:90]}")
    assert not found, "\n".join(found)
