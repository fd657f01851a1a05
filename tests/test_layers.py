"""The package's layers depend only downwards (CONTRIBUTING.md, "Project layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rhmnet"

# the rank of each top-level unit of the package: a module may import units of its own rank or lower
LAYERS = {
    # core: no model code
    "errors": 0, "guards": 0, "labels": 0, "ranges": 0, "config": 0, "cli_args": 0,
    "model": 1,
    "model_io": 2, "losses": 2,
    "data": 3, "inference": 3,
    "dataprep": 4, "overlay": 4, "runtime": 4,
    "engine": 5, "evaluation": 5,
    "segment": 6, "demo": 6, "tools": 6,
    "studio": 7,
}


def unit_of(module: str) -> str:
    """``rhmnet.inference.driver`` -> ``inference``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        units.update(unit_of(n) for n in names if n.split(".")[0] == "rhmnet")
    return units - {""}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("__init__.py",))


def test_every_unit_has_a_layer() -> None:
    units = {p.relative_to(PACKAGE).with_suffix("").parts[0] for p in modules()}
    assert units - {"configs"} <= set(LAYERS), f"units without a layer: {sorted(units - set(LAYERS))}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downwards(path: Path) -> None:
    unit = path.relative_to(PACKAGE).with_suffix("").parts[0]
    upward = sorted(u for u in imported_units(path) if LAYERS.get(u, 99) > LAYERS[unit])
    assert not upward, f"rhmnet/{path.relative_to(PACKAGE)} ({unit}) imports the higher layer(s) {upward}"
