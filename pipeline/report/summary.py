"""The summary metrics: their schema, their checks and statistics over seeds.

The ``summarize`` stage writes ``reports/summary.json`` from the per-model metrics of the
``evaluate`` stage::

    {"protocol": str, "seeds": [int], "units": str,
     "results": {catalogue: {model: {"mean": float, "std": float, "ci95": float,
                                     "n_test": int,
                                     "per_seed": [{"seed": int, "test_nll": float,
                                                   "val_nll": float, "nfe": int,
                                                   "train_steps": int,
                                                   "train_seconds": float,
                                                   "normalization": float,
                                                   "far": {"<r>": {"test_nll", "n",
                                                                   "share"}}}, ...],
                                     "far": {"<r>": {"mean", "std", "ci95",
                                                     "share_mean"}}}}}}

``far`` is the memorisation-free protocol: the test NLL over the test events farther than r
degrees from every training event of their split (``evaluate.far_radii_deg``).

The per-model files hold the inner dict plus ``"loss_history": {"<seed>": [[step, loss], ...]}``.

``std`` is the sample standard deviation over seeds (ddof = 1) and ``ci95`` the half-width
:math:`t_{0.975, n-1}\\,\\mathrm{std}/\\sqrt{n}` of the 95 % confidence interval of the mean
(:math:`2.776\\,\\mathrm{std}/\\sqrt5` for 5 seeds), as in the published tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.published import PUBLISHED_CATALOGUES
from pipeline.variants import get_variant, variant_names

__all__ = [
    "DEFAULT_SUMMARY_PATH",
    "ENTRY_KEYS",
    "PER_SEED_KEYS",
    "build_summary",
    "read_report_json",
    "catalogue_order",
    "seed_mean",
    "summary_models",
    "unique_in_order",
    "validate_summary",
]


#: Where the summary metrics live, relative to the repository root.
DEFAULT_SUMMARY_PATH = "reports/summary.json"


PER_SEED_KEYS = (
    "seed",
    "test_nll",
    "val_nll",
    "nfe",
    "train_steps",
    "train_seconds",
    "normalization",
    "nll_seconds_per_1000",
    "far",
    "weight",
)
ENTRY_KEYS = ("mean", "std", "ci95", "n_test", "nfe_mean", "normalization_max_error", "far")


def _train_seconds(timings_dir: Path, catalogue: str, model: str) -> dict[int, float]:
    """Training seconds per seed of the weights a model uses ({} when not recorded)."""

    trained_from = get_variant(model).trained_from if model in variant_names() else model
    path = timings_dir / catalogue / f"{trained_from}.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {int(r["seed"]): float(r["train_seconds"]) for r in data["per_seed"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a timings file ({exc}); rerun the train stage") from exc


def build_summary(
    metrics_dir: Path,
    catalogues: list[str],
    models: list[str],
    seeds: list[int],
    protocol: str,
    timings_dir: Path | None = None,
) -> dict[str, Any]:
    """The summary dict (the schema in the module docstring) from the per-model metrics files
    (``<metrics_dir>/<catalogue>/<model>.json``) and, if given, the training seconds
    (``<timings_dir>/<catalogue>/<trained model>.json``).

    Raises:
        FileNotFoundError: If a (catalogue, model) metrics file is missing.
    """
    results: dict[str, dict[str, Any]] = {}
    for cat in catalogues:
        results[cat] = {}
        for model in models:
            path = metrics_dir / cat / f"{model}.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing (run evaluate@{cat}-{model})")
            try:
                m = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(
                    f"{path}: not valid JSON ({exc}); rerun evaluate@{cat}-{model}"
                ) from exc
            seconds = _train_seconds(timings_dir, cat, model) if timings_dir else {}
            entry = {k: m[k] for k in ENTRY_KEYS if k in m}
            entry["per_seed"] = []
            for r in m["per_seed"]:
                row = {k: r[k] for k in PER_SEED_KEYS if k in r}
                if int(r["seed"]) in seconds:
                    row["train_seconds"] = seconds[int(r["seed"])]
                entry["per_seed"].append(row)
            results[cat][model] = entry
    return {
        "protocol": protocol,
        "seeds": seeds,
        "units": "test NLL in nats per point, w.r.t. the area measure of the unit sphere",
        "weights": "final EMA weights, no model selection",
        "results": results,
    }


#: Keys every ``per_seed`` entry must have; ``val_nll``, ``nfe``, ``train_steps``,
#: ``train_seconds`` and ``normalization`` are optional (shown as "—" where absent).
_PER_SEED_REQUIRED: tuple[str, ...] = ("seed", "test_nll")


def validate_summary(summary: Mapping[str, Any], where: str = "summary") -> None:
    """Check a summary-metrics dict against the schema described in the module docstring.

    Args:
        summary: The parsed ``summary.json``.
        where: Name used in error messages (e.g. the file or revision it came from).

    Raises:
        ValueError: Naming the first missing key or wrongly typed value.
    """
    if not isinstance(summary, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(summary).__name__}")
    for key in ("protocol", "seeds", "units", "results"):
        if key not in summary:
            raise ValueError(f"{where}: missing top-level key {key!r}")
    results = summary["results"]
    if not isinstance(results, Mapping):
        raise ValueError(f"{where}: 'results' must map catalogue -> model -> metrics")
    for cat, models in results.items():
        if not isinstance(models, Mapping):
            raise ValueError(f"{where}: results[{cat!r}] must map model -> metrics")
        for model, entry in models.items():
            loc = f"{where}: results[{cat!r}][{model!r}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{loc} must be an object")
            for key in ("mean", "std", "ci95", "n_test", "per_seed"):
                if key not in entry:
                    raise ValueError(f"{loc} is missing {key!r}")
            for key in ("mean", "std", "ci95"):
                if not isinstance(entry[key], (int, float)) or isinstance(entry[key], bool):
                    raise ValueError(f"{loc}[{key!r}] must be a number, got {entry[key]!r}")
            if not isinstance(entry["per_seed"], list) or not entry["per_seed"]:
                raise ValueError(f"{loc}['per_seed'] must be a non-empty list")
            for i, row in enumerate(entry["per_seed"]):
                if not isinstance(row, Mapping):
                    raise ValueError(f"{loc}['per_seed'][{i}] must be an object")
                missing = [k for k in _PER_SEED_REQUIRED if k not in row]
                if missing:
                    raise ValueError(f"{loc}['per_seed'][{i}] is missing {missing}")
                for key, value in row.items():
                    if key != "seed" and key in _OPTIONAL_NUMBERS + ("test_nll",):
                        if not isinstance(value, (int, float)) or isinstance(value, bool):
                            raise ValueError(
                                f"{loc}['per_seed'][{i}][{key!r}] must be a number, got {value!r}"
                            )


_OPTIONAL_NUMBERS: tuple[str, ...] = (
    "val_nll",
    "nfe",
    "train_steps",
    "train_seconds",
    "normalization",
)


def seed_mean(entry: Mapping[str, Any], key: str) -> float | None:
    """Mean of an optional per-seed value over the seeds that record it (``None`` if none do).

    Args:
        entry: One ``results[catalogue][model]`` entry of a summary.
        key: Per-seed key, e.g. ``"train_steps"``.

    Returns:
        The mean, or ``None``.
    """
    values = [float(r[key]) for r in entry["per_seed"] if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def catalogue_order(names: Iterable[str]) -> list[str]:
    """Published catalogues first (in table order), then the others alphabetically.

    Args:
        names: Catalogue names (duplicates allowed).

    Returns:
        Each name once, in report order.
    """
    names = set(names)
    head = [c for c in PUBLISHED_CATALOGUES if c in names]
    return head + sorted(names - set(head))


def summary_models(summary: Mapping[str, Any]) -> list[str]:
    """All model names of a summary, in order of first appearance (the evaluate order).

    Args:
        summary: Summary metrics dict.

    Returns:
        Each model once.
    """
    return unique_in_order(m for models in summary["results"].values() for m in models)


def unique_in_order(names: Iterable[str]) -> list[str]:
    """Unique names in order of first appearance.

    Args:
        names: Names, possibly repeated.

    Returns:
        Each name once, where it first appears.
    """
    return list(dict.fromkeys(names))


def read_report_json(path: Path) -> Any:
    """Parse one of the report's JSON inputs, naming the file and the fix in the error.

    Raises:
        ValueError: Not UTF-8 JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); rerun `dvc repro` to write it again"
        ) from exc
