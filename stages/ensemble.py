"""DVC stage ``ensemble@<catalogue>-<model>``: fit and score a two-member ensemble, all seeds.

Reads the ``ensemble`` section of params.yaml (``weight_grid``: grid points on [0, 1]),
``evaluate.far_radii_deg`` and ``train.seeds``. Per seed the weight of the first member
(``kde``) against the second (``rsgm``) is chosen on the members' stored validation log-densities
(``data/scores/<catalogue>/<member>.npz``, written by evaluate@), the test NLL under both
protocols follows from their test log-densities (no new ODE solve), and the seed folder
``data/models/<catalogue>/kde_rsgm/seed<k>/`` gets the model card (members and weights) and
copies of both members' seed folders, so maps@ and the query verbs read it as any model.
Writes ``reports/metrics/<catalogue>/kde_rsgm.json`` in the evaluate stage's format.

Usage::

    python -m stages.ensemble --catalogue earthquake --model kde_rsgm
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from stages.common import load_params, section, write_json_atomic

SECTION = "ensemble"
EXPECTED: tuple[type[Exception], ...] = (KeyError, ValueError, FileNotFoundError)
"""Errors that mean bad input: one line, no traceback."""
_KEYS = {"models", "weight_grid"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.ensemble", description=__doc__)
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--model", default="kde_rsgm")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--scores-dir", type=Path, default=Path("data/scores"))
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/metrics"))
    return parser.parse_args(argv)


def _member_metrics(path: Path) -> dict[int, dict[str, Any]]:
    """A member's per-seed metrics rows by seed."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (run evaluate@ for this member)")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["per_seed"]
        return {int(r["seed"]): r for r in rows}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a metrics file ({exc})") from exc


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fit the weights, write the model folder and the metrics; print one line.

    Raises:
        KeyError, ValueError: On bad params (naming the key) or inconsistent member scores.
        FileNotFoundError: If a member's scores, metrics or model folder is missing.
    """
    import numpy as np

    from pipeline.atomic import atomic_copy_tree
    from pipeline.checkpoints import write_model_card
    from pipeline.data.splits import load_split
    from pipeline.split_scores import far_scores, metrics_over_seeds
    from pipeline.variants import get_variant

    params = load_params(args.params)
    settings = section(params, SECTION, args.params)
    unknown = sorted(set(settings) - _KEYS)
    if unknown:
        raise KeyError(f"{args.params}: ensemble: unknown key(s) {unknown}; known {sorted(_KEYS)}")
    variant: Any = get_variant(args.model)  # an ensemble: choose_weight, mixture_logp
    if variant.fitted_by != "ensemble" or len(variant.members) != 2:
        raise ValueError(f"model {args.model!r} is not a two-member ensemble")
    n_grid = int(settings.get("weight_grid", 101))
    evaluate = section(params, "evaluate", args.params)
    radii = [float(r) for r in evaluate.get("far_radii_deg", [])]
    seeds = [int(s) for s in section(params, "train", args.params)["seeds"]]
    first, second = variant.members
    cat = args.catalogue
    scores = {}
    for member in (first, second):
        path = args.scores_dir / cat / f"{member}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (run evaluate@{cat}-{member})")
        with np.load(path) as f:
            scores[member] = {k: f[k] for k in f.files}
    member_rows = {
        m: _member_metrics(args.metrics_dir / cat / f"{m}.json") for m in (first, second)
    }
    processed = args.processed_dir / f"{cat}.nc"
    split_csv = args.splits_dir / f"{cat}.csv"
    per_seed: list[dict[str, Any]] = []
    dest = args.models_dir / cat / args.model
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{args.model}.", dir=dest.parent) as staging:
        for seed in seeds:
            key_v, key_t = f"seed{seed}_val_logp", f"seed{seed}_test_logp"
            for member in (first, second):
                if key_v not in scores[member] or key_t not in scores[member]:
                    raise ValueError(
                        f"{args.scores_dir / cat / member}.npz: no seed {seed} val/test scores"
                    )
            w, val_nll = variant.choose_weight(
                scores[first][key_v], scores[second][key_v], n_grid=n_grid
            )
            test_logp = variant.mixture_logp(scores[first][key_t], scores[second][key_t], w)
            parts = load_split(processed, split_csv, seed)
            row: dict[str, Any] = {
                "seed": seed,
                "test_nll": float(-test_logp.mean()),
                "n_test": int(test_logp.size),
                "val_nll": val_nll,
                "weight": w,
                "far": far_scores(test_logp, parts["test"], parts["train"], radii),
                "nfe": int(member_rows[second].get(seed, {}).get("nfe", 0)),
                "loss_history": [],
            }
            z_a, z_b = (member_rows[m].get(seed, {}).get("normalization") for m in (first, second))
            if z_a is not None and z_b is not None:  # a mixture's integral: exact, linear
                row["normalization"] = w * float(z_a) + (1 - w) * float(z_b)
            per_seed.append(row)
            seed_dir = Path(staging) / f"seed{seed}"
            for member in (first, second):
                src = args.models_dir / cat / member / f"seed{seed}"
                if not src.is_dir():
                    raise FileNotFoundError(f"{src}: missing (the {member} member's weights)")
                shutil.copytree(src, seed_dir / member, copy_function=shutil.copyfile)
            write_model_card(
                seed_dir, args.model, {"members": [first, second], "weights": [w, 1.0 - w]}
            )
        atomic_copy_tree(staging, dest)
    metrics = metrics_over_seeds(args.model, cat, per_seed, evaluate)
    metrics["members"] = [first, second]
    metrics["weights"] = f"w * {first} + (1 - w) * {second}, w chosen per seed on validation NLL"
    write_json_atomic(metrics, args.metrics_dir / cat / f"{args.model}.json")
    weights = ", ".join(f"{r['weight']:.2f}" for r in per_seed)
    print(
        f"ensemble {cat}/{args.model}: test NLL {metrics['mean']:+.3f} ± {metrics['ci95']:.3f}"
        f" (w of {first} per seed: {weights})"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 1 on bad input."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(lambda: run(args), f"ensemble-{args.catalogue}", EXPECTED, "ensemble")


if __name__ == "__main__":
    sys.exit(main())
