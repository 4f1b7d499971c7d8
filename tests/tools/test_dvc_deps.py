"""tools/dvc_deps.py: import closures and the rewrite of dvc.yaml's code deps."""

from __future__ import annotations

from pathlib import Path

from tests.errors import raises_naming
from tools.dvc_deps import (
    CODE_COMMENT,
    closure,
    code_deps,
    dependent_stages,
    render,
    stage_commands,
)


def _project(root: Path) -> None:
    files = {
        "pipeline/__init__.py": "",  # empty: no dependency
        "pipeline/a.py": "def f():\n    from pipeline.sub import b\n",
        "pipeline/sub/__init__.py": "from pipeline.sub.c import C\n",
        "pipeline/sub/b.py": "import math\n",
        "pipeline/sub/c.py": "C = 1\n",
        "pipeline/unused.py": "X = 1\n",
        "pipeline/flows/__init__.py": "",
        "pipeline/flows/fanout.py": "import pipeline.sub.c\n",
        "stages/__init__.py": "",
        "stages/s.py": "from pipeline import a\nfrom pipeline.flows.fanout import run\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


DVC_YAML = """\
stages:
  # s: a stage
  s:
    cmd: python -m stages.s --x 1
    deps:
      # the raw data
      - data/raw.csv
      - pipeline/sub
      # a stale comment among code deps
      - pipeline/unused.py
      - pipeline/flows/fanout.py
    params:
      - s
"""


def test_closure_follows_lazy_imports_packages_and_skips_empty_inits(tmp_path: Path) -> None:
    _project(tmp_path)
    got = {p.as_posix() for p in closure("stages.s", tmp_path)}
    assert got == {
        "stages/s.py",
        "pipeline/a.py",
        "pipeline/sub/__init__.py",
        "pipeline/sub/b.py",
        "pipeline/sub/c.py",
        "pipeline/flows/fanout.py",
    }
    # orchestration is left out; the stage's script comes first
    assert code_deps("stages.s", tmp_path) == [
        "stages/s.py",
        "pipeline/a.py",
        "pipeline/sub/__init__.py",
        "pipeline/sub/b.py",
        "pipeline/sub/c.py",
    ]


def test_render_rewrites_only_code_deps_and_is_idempotent(tmp_path: Path) -> None:
    _project(tmp_path)
    assert stage_commands(DVC_YAML) == {"s": "stages.s"}
    new = render(DVC_YAML, tmp_path)
    assert new == (
        "stages:\n  # s: a stage\n  s:\n    cmd: python -m stages.s --x 1\n    deps:\n"
        "      # the raw data\n      - data/raw.csv\n"
        f"      {CODE_COMMENT}\n"
        "      - stages/s.py\n      - pipeline/a.py\n      - pipeline/sub/__init__.py\n"
        "      - pipeline/sub/b.py\n      - pipeline/sub/c.py\n"
        "    params:\n      - s\n"
    )
    assert render(new, tmp_path) == new


def test_an_edit_of_a_module_changes_exactly_its_importers(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "pipeline/sub/b.py").write_text("import pipeline.unused\n")
    assert "pipeline/unused.py" in code_deps("stages.s", tmp_path)


def _variants_project(root: Path, dsb_imports: str = "") -> None:
    _project(root)
    files = {
        "pipeline/variants/__init__.py": "import importlib\n",  # the registry: by name only
        "pipeline/variants/base.py": "X = 1\n",
        "pipeline/lib.py": "Y = 1\n",
        "pipeline/variants/rsgm/__init__.py": "from pipeline.variants.base import X\n",
        "pipeline/variants/dsb/__init__.py": "from pipeline.variants.dsb import ipf\n"
        + dsb_imports,
        "pipeline/variants/dsb/ipf.py": "from pipeline.lib import Y\n",
        "stages/t.py": "import pipeline.variants\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_variant_stage_keeps_its_folder_and_gets_the_variant_library(tmp_path: Path) -> None:
    from tools.dvc_deps import variant_library

    _variants_project(tmp_path)
    # What variants import outside their folders; never a variant's own files.
    assert variant_library(tmp_path) == {
        "pipeline/variants/__init__.py",
        "pipeline/variants/base.py",
        "pipeline/lib.py",
    }
    text = (
        "stages:\n  t:\n    matrix:\n      model: [rsgm, dsb]\n"
        "    cmd: python -m stages.t --model ${item.model}\n    deps:\n"
        "      - pipeline/variants/${item.model}\n      - pipeline/lib.py\n"
    )
    out = render(text, tmp_path)
    deps = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("- ")]
    assert deps[0] == "pipeline/variants/${item.model}"  # declared by hand: kept
    assert "pipeline/lib.py" in deps  # the dsb package needs it
    assert not [d for d in deps if d.startswith("pipeline/variants/dsb")]  # only via the folder
    assert render(out, tmp_path) == out


def test_a_variant_that_imports_another_variant_is_refused(tmp_path: Path) -> None:
    from tools.dvc_deps import variant_library

    _variants_project(tmp_path, dsb_imports="from pipeline.variants.rsgm import X\n")
    with raises_naming(ValueError, "pipeline/variants/dsb/", "pipeline/variants/rsgm/__init__.py"):
        variant_library(tmp_path)


def test_the_project_dvc_yaml_runs_each_variant_from_its_own_folder() -> None:
    """An edit to one variant (e.g. the bridge, pipeline/variants/dsb/) or to the SO(3) kernel
    reruns only the stages that run it: no stage lists a variant's files one by one, the S²
    stages do not list the SO(3) package, and every stage that runs a variant declares its
    folder."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in stages.items():
        deps = stage.get("do", stage)["deps"]
        files = [d for d in deps if d.startswith("pipeline/variants/") and d.endswith(".py")]
        assert all(f.split("/")[2] in ("__init__.py", "base.py") for f in files), (name, files)
        if name in ("train_config", "train", "evaluate", "maps", "ensemble"):
            assert "pipeline/variants/${item.model}" in deps, name
            assert not [d for d in deps if d.startswith("pipeline/so3/")], name


def test_an_edit_of_one_variant_reaches_only_its_own_stages() -> None:
    who = dependent_stages(
        [
            "pipeline/variants/kde/density.py",
            "pipeline/variants/kde_rsgm/mixture.py",
            "pipeline/so3/manifold.py",
            "pipeline/cli/commands.py",
            "pipeline/refresh/flow.py",
            "pipeline/flows/fanout.py",
        ]
    )
    kde = set(who["pipeline/variants/kde/density.py"])
    assert {"train@volcano-kde", "evaluate@fire-kde", "maps@flood-kde"} <= kde
    assert all(name.endswith("-kde") for name in kde), kde
    assert all("kde_rsgm" in s for s in who["pipeline/variants/kde_rsgm/mixture.py"])
    assert who["pipeline/variants/kde_rsgm/mixture.py"]
    # The SO(3) kernel reaches the SO(3) stages (and the geometry experiments), no S² model.
    assert not [s for s in who["pipeline/so3/manifold.py"] if s.startswith(("train", "evaluate"))]
    # The CLI, the refresh flow and the runners are no stage's code: an edit reruns nothing.
    assert who["pipeline/cli/commands.py"] == [] and who["pipeline/flows/fanout.py"] == []
    assert who["pipeline/refresh/flow.py"] == []
