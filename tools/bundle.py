"""Fill ``models-bundle/`` (the DVC remote kept in git) from a finished run.

For each catalogue of params.yaml and each model named (default: ``kde`` and ``rsgm``), the
fitting stage's outputs go to the ``bundled`` remote: a folder whose seeds all hold EMA weights
(a score network) contributes only :data:`pipeline.query.bundle.QUERY_FILES` of each seed,
any other folder (``kde``) the whole output. ``models-bundle/index.json`` then lists what is
there, which is what a fresh clone's query reads (:func:`pipeline.query.bundle.fetch_from_bundle`).

Usage::

    python -m tools.bundle                    # kde and rsgm of every catalogue
    python -m tools.bundle --models kde       # kde only

The remote keeps objects from earlier runs (git holds them anyway); only the index decides
what a query fetches.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from pipeline.atomic import atomic_write
from pipeline.config import read_yaml_mapping
from pipeline.query.bundle import (
    BUNDLE_DIR,
    BUNDLE_REMOTE,
    INDEX_FILE,
    QUERY_FILES,
    fitting_stage,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("kde", "rsgm")

__all__ = ["bundle_targets", "main"]


def bundle_targets(repo: Path, catalogue: str, model: str) -> tuple[str, list[str] | None]:
    """The fitting stage of ``catalogue``/``model`` and what of it to bundle.

    Returns:
        ``(stage, None)`` for the stage's whole output, or ``(stage, [paths])``: the query
        files of every seed, relative to ``repo``, when every seed folder holds EMA weights.

    Raises:
        FileNotFoundError: The model folder has no ``seed<k>`` folder (the run did not fit it).
    """
    stage = fitting_stage(catalogue, model)
    folder = Path("data/models") / catalogue / model
    seeds = sorted(p for p in (repo / folder).glob("seed*") if p.is_dir())
    if not seeds:
        raise FileNotFoundError(f"{folder}: no seed folders; run the stage {stage} first")
    if not all((s / QUERY_FILES[0]).is_file() for s in seeds):
        return stage, None
    return stage, [(folder / s.name / f).as_posix() for s in seeds for f in QUERY_FILES]


def main(argv: list[str] | None = None) -> int:
    """Push the chosen models' query files to the bundled remote and write its index."""
    parser = argparse.ArgumentParser(prog="python -m tools.bundle", description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    catalogues = read_yaml_mapping(repo / "params.yaml")["ingest"]["catalogues"]
    index: dict[str, list[str] | None] = {}
    for catalogue in catalogues:
        for model in args.models:
            stage, paths = bundle_targets(repo, catalogue, model)
            index[stage] = paths
    targets = [t for stage, paths in index.items() for t in (paths or [stage])]
    dvc = str(Path(sys.executable).with_name("dvc"))
    done = subprocess.run(
        [dvc, "push", "-r", BUNDLE_REMOTE, *targets], cwd=repo, text=True, check=False
    )
    if done.returncode != 0:
        print(f"tools.bundle: dvc push failed (rc {done.returncode}); index unchanged")
        return 1
    path = repo / BUNDLE_DIR / INDEX_FILE
    text = json.dumps(dict(sorted(index.items())), indent=1) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"tools.bundle: {len(index)} stage(s) in {path.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
