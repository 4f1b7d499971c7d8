"""Fill ``models-bundle/`` (the DVC remote kept in git) from a finished run.

For each catalogue of params.yaml and each model named (default: ``kde`` and ``rsgm``), the
fitting stage's outputs go to the ``bundled`` remote: a folder whose seeds all hold EMA weights
(a score network) contributes only :data:`pipeline.query.bundle.QUERY_FILES` of each seed,
any other folder (``kde``) the whole output. ``models-bundle/index.json`` then lists what is
there, which is what a fresh clone's query reads (:func:`pipeline.query.bundle.fetch_from_bundle`).

Usage::

    python -m tools.bundle                    # kde and rsgm of every catalogue
    python -m tools.bundle --models kde       # kde only

The objects are copied from the local DVC cache into the remote's folder, which has the
cache's layout (``files/md5/ab/cdef...``): ``dvc push`` of single files of a tracked folder
pushes nothing once the folder's manifest is on the remote (DVC 3.67 takes a present manifest
for a complete folder). The remote keeps objects from earlier runs (git holds them anyway);
only the index decides what a query fetches.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_write
from pipeline.config import read_yaml_mapping
from pipeline.query.bundle import (
    BUNDLE_DIR,
    INDEX_FILE,
    QUERY_FILES,
    fitting_stage,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("kde", "rsgm")

__all__ = ["bundle_targets", "copy_to_bundle", "lock_stages", "main", "stage_objects"]


def bundle_targets(repo: Path, catalogue: str, model: str) -> tuple[str, list[str]]:
    """The fitting stage of ``catalogue``/``model`` and what of it to bundle.

    Returns:
        ``(stage, [paths])``, relative to ``repo``: the model folder, or the query files of
        every seed when every seed folder holds EMA weights.

    Raises:
        FileNotFoundError: The model folder has no ``seed<k>`` folder (the run did not fit it).
    """
    stage = fitting_stage(catalogue, model)
    folder = Path("data/models") / catalogue / model
    seeds = sorted(p for p in (repo / folder).glob("seed*") if p.is_dir())
    if not seeds:
        raise FileNotFoundError(f"{folder}: no seed folders; run the stage {stage} first")
    if not all((s / QUERY_FILES[0]).is_file() for s in seeds):
        return stage, [folder.as_posix()]
    return stage, [(folder / s.name / f).as_posix() for s in seeds for f in QUERY_FILES]


def _object(base: Path, md5: str) -> Path:
    return base / "files" / "md5" / md5[:2] / md5[2:]


def lock_stages(repo: Path) -> dict[str, Any]:
    """``dvc.lock``'s stages (read once: the file is large)."""
    return dict(read_yaml_mapping(repo / "dvc.lock")["stages"])


def stage_objects(lock: Mapping[str, Any], stage: str, paths: list[str], cache: Path) -> list[str]:
    """The md5s of ``paths`` (folder outputs of ``stage``, or files in one) as dvc.lock names
    them, each folder's manifest included.

    Args:
        lock: :func:`lock_stages`.
        stage: The stage that writes them.
        paths: Relative to the project root.
        cache: Where the folder manifests are read (a cache root holding ``files/md5``).
    """
    if stage not in lock:
        raise KeyError(f"dvc.lock: no stage {stage!r} (run it first)")
    outs = lock[stage]["outs"]
    manifests: dict[str, dict[str, str]] = {}  # per folder md5: relpath -> md5
    found: list[str] = []
    for path in paths:
        out = next((o for o in outs if f"{path}/".startswith(f"{o['path']}/")), None)
        if out is None or not str(out.get("md5", "")).endswith(".dir"):
            raise KeyError(f"dvc.lock: {path} is not in a folder output of {stage}")
        if out["md5"] not in manifests:
            manifest = _object(cache, out["md5"])
            if not manifest.is_file():
                raise FileNotFoundError(f"{manifest}: {out['path']}'s manifest is not in the cache")
            listed = json.loads(manifest.read_text(encoding="utf-8"))
            manifests[out["md5"]] = {e["relpath"]: e["md5"] for e in listed}
        entries = manifests[out["md5"]]
        rel = path[len(out["path"]) + 1 :]
        if rel and rel not in entries:
            raise KeyError(f"dvc.lock: {out['path']} of {stage} has no {rel!r}")
        found += [out["md5"], *([entries[rel]] if rel else entries.values())]
    return list(dict.fromkeys(found))


def copy_to_bundle(
    repo: Path, lock: Mapping[str, Any], stage: str, paths: list[str], cache: Path
) -> int:
    """Copy the objects of ``paths`` (a folder output of ``stage``, or files in one), as
    dvc.lock names them, from the DVC cache into :data:`BUNDLE_DIR`; how many were new.

    Args:
        repo: Project root.
        lock: :func:`lock_stages`.
        stage: The stage that writes them.
        paths: Relative to ``repo``.
        cache: The DVC cache root (the folder holding ``files/md5``).

    Raises:
        FileNotFoundError: An object missing from the cache (one line naming the file).
        KeyError: A stage not in dvc.lock, or a path not in a folder output of it.
    """
    new = 0
    for md5 in stage_objects(lock, stage, paths, cache):
        src, dst = _object(cache, md5), _object(repo / BUNDLE_DIR, md5)
        if dst.is_file():
            continue
        if not src.is_file():
            raise FileNotFoundError(f"{src}: object of {stage} is not in the cache")
        atomic_write(dst, partial(shutil.copyfile, src))
        dst.chmod(0o444)  # read-only, as DVC keeps its objects
        new += 1
    return new


def main(argv: list[str] | None = None) -> int:
    """Copy the chosen models' bundled files into the remote's folder and write its index."""
    parser = argparse.ArgumentParser(prog="python -m tools.bundle", description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    catalogues = read_yaml_mapping(repo / "params.yaml")["ingest"]["catalogues"]
    index: dict[str, list[str]] = {}
    for catalogue in catalogues:
        for model in args.models:
            stage, paths = bundle_targets(repo, catalogue, model)
            index[stage] = paths
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        cache = Path(dvc_repo.cache.local.path).parents[1]  # .../files/md5 -> the cache root
    lock = lock_stages(repo)
    new = sum(copy_to_bundle(repo, lock, stage, p, cache) for stage, p in index.items())
    path = repo / BUNDLE_DIR / INDEX_FILE
    text = json.dumps(dict(sorted(index.items())), indent=1) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"tools.bundle: {len(index)} stage(s), {new} new object(s) in {BUNDLE_DIR}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
