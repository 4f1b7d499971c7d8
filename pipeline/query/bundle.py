"""The committed run's weights, bundled in the repository: a DVC remote inside the project.

``models-bundle/`` is a DVC remote (``bundled`` in ``.dvc/config``) kept in git, so a fresh
clone can answer ``geosgm density`` and ``geosgm sample`` without retraining. Its
``index.json`` (:data:`INDEX_FILE`) says what it holds, per fitting stage: the model folder
(``kde``: a few hundred kB a catalogue), or only the files a query reads of each seed
(:data:`QUERY_FILES`: a score network's EMA weights, not its raw weights or optimizer state,
a quarter of the folder). A query whose model folder is missing fetches that with ``dvc pull
-r bundled <folder or files>`` (DVC pulls single files of a tracked folder). Content-addressed
like any DVC remote, so a pull gives exactly the bytes ``dvc.lock`` names, or fails.

``python -m tools.bundle`` fills it from a finished run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "BUNDLE_DIR",
    "BUNDLE_REMOTE",
    "INDEX_FILE",
    "QUERY_FILES",
    "bundle_index",
    "dvc_executable",
    "fetch_from_bundle",
    "fitting_stage",
]

BUNDLE_REMOTE = "bundled"
"""The remote's name in ``.dvc/config``."""
BUNDLE_DIR = "models-bundle"
"""The remote's folder, relative to the project root."""
INDEX_FILE = "index.json"
"""``{stage: [paths]}`` (its model folder, or files in it), in :data:`BUNDLE_DIR`."""
QUERY_FILES = ("ema.safetensors", "meta.json", "model.json")
"""What a query reads of a score network's seed folder (the EMA weights are what is evaluated)."""


def fitting_stage(catalogue: str, model: str) -> str:
    """The DVC stage that writes ``data/models/<catalogue>/<model>/``.

    Raises:
        ValueError: An unknown model name.
    """
    from pipeline.variants import get_variant

    variant = get_variant(model)
    if variant.fitted_by == "derive":  # one derive stage per catalogue
        return f"derive@{catalogue}"
    return f"{variant.fitted_by}@{catalogue}-{model}"


def dvc_executable() -> str | None:
    """The ``dvc`` beside this interpreter (the project's venv), else on PATH; None if neither."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else shutil.which("dvc")


def bundle_index(repo: Path) -> dict[str, list[str]]:
    """What the bundle holds (:data:`INDEX_FILE`); empty when there is no bundle or index.

    Raises:
        ValueError: An index that is not a ``{stage: [paths]}`` mapping (one line
            naming the file).
    """
    path = repo / BUNDLE_DIR / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable bundle index ({exc})") from None
    ok = isinstance(raw, dict) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(p, str) for p in v)
        for k, v in raw.items()
    )
    if not ok:
        raise ValueError(f"{path}: expected {{stage: [paths]}}")
    return raw


def fetch_from_bundle(repo: Path, stage: str, timeout: float = 600.0) -> bool:
    """Check out what the bundle holds of ``stage``'s outputs; whether that worked.

    False when the project has no bundle, the bundle's index does not list the stage, dvc
    is missing, or the bundle does not hold the outputs ``dvc.lock`` names (e.g. after params
    changed): the caller then says how to fit.
    """
    dvc = dvc_executable()
    index = bundle_index(repo)
    if dvc is None or stage not in index:
        return False
    targets = index[stage]
    done = subprocess.run(
        [dvc, "pull", "--quiet", "-r", BUNDLE_REMOTE, *targets],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode == 0
