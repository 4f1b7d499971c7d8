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

from tools.dvc_deps import ORCHESTRATION, closure, render

ROOT = Path(__file__).resolve().parents[1]


def _stages() -> dict[str, dict[str, object]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: spec.get("do", spec) for name, spec in stages.items()}


def test_code_deps_are_the_derived_import_closures() -> None:
    """dvc.yaml's code deps are exactly what ``python -m tools.dvc_deps --write`` derives."""
    text = (ROOT / "dvc.yaml").read_text()
    assert render(text, ROOT) == text, (
        "dvc.yaml's code deps differ from the stages' import closures: "
        "run `python -m tools.dvc_deps --write`"
    )


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_imported_module_is_a_dep_or_orchestration(stage: str) -> None:
    spec = _stages()[stage]
    match = re.search(r"python -m (stages\.\w+)", str(spec["cmd"]))
    assert match, f"stage {stage}: command does not run a stages module"
    deps = {str(d) for d in spec.get("deps", []) if isinstance(d, str)}  # type: ignore[union-attr]
    for file in closure(match.group(1), ROOT):
        rel = str(file)
        assert rel in deps or rel.startswith(ORCHESTRATION), f"{stage}: {rel} is not a dep"


def test_orchestration_is_never_a_dep() -> None:
    """A runner or a stop handler decides where work runs, not what it computes."""
    for name, spec in _stages().items():
        for dep in spec.get("deps", []):  # type: ignore[union-attr]
            assert not str(dep).startswith(ORCHESTRATION), f"{name} lists {dep}"


def test_stage_names_match_scripts_and_params_sections() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, spec in _stages().items():
        assert (ROOT / "stages" / f"{name}.py").is_file(), name
        # exec: no shell between dvc and the stage (see the head of dvc.yaml)
        assert str(spec["cmd"]).startswith(f"exec python -m stages.{name}"), name
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


def test_no_cached_dvc_output_is_tracked_by_git() -> None:
    """A cached output in git makes `dvc repro` fail ("already tracked by SCM") when its stage
    reruns; `git add -A` after a run adds any output whose .gitignore entry is missing."""
    import subprocess

    from dvc.repo import Repo

    root = Path(__file__).resolve().parents[1]
    with Repo(str(root)) as repo:
        cached = [str(o.def_path) for s in repo.index.stages for o in s.outs if o.use_cache]
    tracked = subprocess.run(
        ["git", "ls-files", "--", *cached], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked == [], tracked
