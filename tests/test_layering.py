"""The layering rule of docs/ARCHITECTURE.md: a pipeline module imports only from lower layers.

Every module of ``pipeline/`` belongs to a unit (a subpackage such as ``geometry``, or a
top-level module such as ``training``); units are ordered in :data:`LAYERS`. An import of
another unit must point to a strictly lower layer; nothing in ``pipeline/`` imports
``stages``. Imports inside functions count too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipeline"

#: Lowest first. A unit may import units of lower layers only (and itself).
LAYERS: list[set[str]] = [
    # foundations: no other pipeline unit
    {
        "geometry",
        "atomic",
        "stopping",
        "published",
        "config",  # reading, merging and checking params (pipeline/config/)
        "process_group",
        "gitio",
        "numerics",
        "devices",
    },
    {"sde", "data", "metrics", "so3", "mmd"},  # noising; catalogues; checks; SO(3)
    {"models", "transition"},  # score networks; the forward transition (sampler, DSM target)
    {"losses", "likelihood", "sampling", "checkpoints", "normalization"},  # the engine
    {"training"},  # the trainer
    {"variants"},  # the variant registry and contract (pipeline/variants/__init__.py, base.py)
    {"ambient"},  # seed-002 ambient DSM (the three ambient variants share it)
    {"evaluation"},  # a fitted model loaded (by its variant) and evaluated
    {"plugins"},  # pipeline/variants/<name>/: one package per model variant
    {"maps", "query", "so3_benchmark", "split_scores"},  # what users see; scored seeds
    {"report"},  # the report (it shows the maps and what moved on them)
    {"flows"},  # orchestration (Prefect, Dask, the stage wrapper, dvc repro, a local server)
    {"refresh"},  # the refresh transaction and its scheduled deployment (pipeline/refresh/)
    {"cli"},  # the command and its query verbs (pipeline/cli/)
]


def _layer_of(unit: str) -> int:
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"pipeline unit {unit!r} has no layer in tests/test_layering.py LAYERS")


def _unit(module: str) -> str | None:
    """``pipeline.sde.brownian`` -> ``sde``; ``pipeline.variants.kde.density`` -> ``plugins``
    (every variant package); ``pipeline`` itself -> None."""
    parts = module.split(".")
    if parts[:2] == ["pipeline", "variants"] and len(parts) > 2 and parts[2] != "base":
        return "plugins"
    return parts[1] if parts[0] == "pipeline" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every absolute import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pipeline":  # from pipeline import evaluation
                out += [(node.lineno, f"pipeline.{alias.name}") for alias in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


MODULES = sorted(p for p in PIPELINE.rglob("*.py"))


def _own_unit(path: Path) -> str | None:
    rel = path.relative_to(PIPELINE).with_suffix("")
    if rel.parts[0] == "variants" and len(rel.parts) > 2:  # pipeline/variants/<name>/...
        return "plugins"
    return None if rel.parts == ("__init__",) else rel.parts[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_the_layers(path: Path) -> None:
    own = _own_unit(path)
    if own is None:
        return  # pipeline/__init__.py
    bad = []
    for line, module in _imports(path):
        if module == "stages" or module.startswith("stages."):
            bad.append(f"line {line}: imports {module} (pipeline/ never imports stages/)")
            continue
        unit = _unit(module)
        if unit is None or unit == own:
            continue
        if _layer_of(unit) >= _layer_of(own):
            bad.append(
                f"line {line}: {own} (layer {_layer_of(own)}) imports {module} "
                f"(layer {_layer_of(unit)}): not a lower layer"
            )
    assert not bad, f"{path.relative_to(ROOT)}:\n" + "\n".join(bad)


def test_every_unit_has_a_layer_and_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    units = {u for p in MODULES if (u := _own_unit(p)) is not None}
    for unit in units:
        _layer_of(unit)
    upward = tmp_path / "bad.py"
    upward.write_text("def f():\n    from pipeline.flows.fanout import run_seeds\n")
    assert _imports(upward) == [(2, "pipeline.flows.fanout")]
    assert _layer_of("flows") > _layer_of("geometry")
    # The refresh (and its deployment) runs on the orchestration.
    assert (
        _unit("pipeline.refresh.deploy") == "refresh" and _unit("pipeline.flows.stage") == "flows"
    )
    assert _layer_of("flows") < _layer_of("refresh") < _layer_of("cli")
