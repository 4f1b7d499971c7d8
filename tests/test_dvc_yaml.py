"""dvc.yaml: every stage lists as deps exactly the project modules its command imports.

Module boundaries are DVC dependency boundaries: a stage that imports a module it does not
list would not rerun when that module changes; one that lists a module it never imports reruns
for nothing (e.g. editing the map code must not retrain models).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages")


def _module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imports(file: Path) -> set[str]:
    """Project modules imported anywhere in a file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in found if n.split(".")[0] in PACKAGES and _module_file(n) is not None}


def _closure(module: str) -> set[Path]:
    """Files of a module, of everything it imports (transitively) and of their packages."""
    files: set[Path] = set()
    todo = [module]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
            parent = _module_file(".".join(parts[:i]))
            if parent is not None and parent.name == "__init__.py":
                todo.append(".".join(parts[:i]))
        file = _module_file(name)
        if file is None:
            continue
        if file.read_text().strip():  # an empty __init__.py is no dependency (DVC warns on it)
            files.add(file.relative_to(ROOT))
        todo.extend(_imports(file))
    return files


def _stages() -> dict[str, dict[str, object]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: spec.get("do", spec) for name, spec in stages.items()}


def _covered(file: Path, deps: list[str]) -> bool:
    return any(file == Path(d) or Path(d) in file.parents for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_exactly_its_imports(stage: str) -> None:
    spec = _stages()[stage]
    match = re.search(r"python -m (stages\.\w+)", str(spec["cmd"]))
    assert match, f"stage {stage}: command does not run a stages module"
    imported = _closure(match.group(1))
    deps = [str(d) for d in spec.get("deps", []) if isinstance(d, str)]  # type: ignore[union-attr]
    code_deps = [d for d in deps if d.split("/")[0] in PACKAGES]
    missing = sorted(str(f) for f in imported if not _covered(f, code_deps))
    assert not missing, f"stage {stage} imports modules it does not list as deps: {missing}"
    unused = sorted(
        d for d in code_deps if not any(f == Path(d) or Path(d) in f.parents for f in imported)
    )
    assert not unused, f"stage {stage} lists deps it never imports: {unused}"


def test_stage_names_match_scripts_and_params_sections() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, spec in _stages().items():
        assert (ROOT / "stages" / f"{name}.py").is_file(), name
        assert f"python -m stages.{name}" in str(spec["cmd"]), name
        for key in spec.get("params", []):  # type: ignore[union-attr]
            if isinstance(key, str) and "${" not in key:
                assert key.split(".")[0] in params, f"{name}: params key {key} missing"


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_task_runner_is_not_a_params_dependency(stage: str) -> None:
    """Changing the runner (threads, processes, Dask) cannot change a result: no rerun."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert "runner" in params[stage]
    declared = [str(k) for k in _stages()[stage].get("params", [])]  # type: ignore[union-attr]
    assert stage not in declared, f"{stage}: the whole section (runner included) is a dependency"
    assert f"{stage}.runner" not in declared


def test_evaluate_declares_every_setting_but_the_runner() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    declared = {str(k) for k in _stages()["evaluate"].get("params", [])}  # type: ignore[union-attr]
    # `models` picks the matrix entries; each stage's own model is in its command.
    wanted = {f"evaluate.{k}" for k in params["evaluate"] if k not in ("runner", "models")}
    assert wanted <= declared, f"undeclared: {sorted(wanted - declared)}"
