"""dvc.yaml: every stage lists as deps exactly the project modules its command imports.

Module boundaries are DVC dependency boundaries: a stage that imports a module it does not
list would not rerun when that module changes; one that lists a module it never imports reruns
for nothing (e.g. editing the map code must not retrain models).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tools.dvc_deps import PACKAGES, closure

ROOT = Path(__file__).resolve().parents[1]


def _closure(module: str) -> set[Path]:
    """Files of a module and of everything it imports (tools/dvc_deps.py, the one copy)."""
    return closure(module, ROOT)


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
