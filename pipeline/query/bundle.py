"""The committed run's weights, bundled in the repository: a DVC remote inside the project.

``models-bundle/`` is a DVC remote (``bundled`` in ``.dvc/config``) kept in git. It holds the
outputs of the fitting stages of the default models of the committed run, so a fresh clone can
answer ``geosgm density`` and ``geosgm sample`` without retraining: a query whose model folder
is missing fetches it with ``dvc pull -r bundled <stage>``. Content-addressed like any DVC
remote, so a pull gives exactly the bytes ``dvc.lock`` names, or fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["BUNDLE_DIR", "BUNDLE_REMOTE", "fetch_from_bundle", "fitting_stage"]

BUNDLE_REMOTE = "bundled"
"""The remote's name in ``.dvc/config``."""
BUNDLE_DIR = "models-bundle"
"""The remote's folder, relative to the project root."""


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


def _dvc() -> str | None:
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else shutil.which("dvc")


def fetch_from_bundle(repo: Path, stage: str, timeout: float = 600.0) -> bool:
    """Check out ``stage``'s outputs from the bundled remote; whether that worked.

    False when the project has no bundle, dvc is missing, or the bundle does not hold the
    outputs ``dvc.lock`` names (e.g. after params changed): the caller then says how to fit.
    """
    dvc = _dvc()
    if dvc is None or not (repo / BUNDLE_DIR).is_dir():
        return False
    done = subprocess.run(
        [dvc, "pull", "--quiet", "-r", BUNDLE_REMOTE, stage],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode == 0
