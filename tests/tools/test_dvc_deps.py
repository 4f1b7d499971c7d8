"""tools/dvc_deps.py: import closures and the rewrite of dvc.yaml's code deps."""

from __future__ import annotations

from pathlib import Path

from tools.dvc_deps import CODE_COMMENT, closure, code_deps, render, stage_commands


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
