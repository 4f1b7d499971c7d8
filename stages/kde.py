"""DVC stage ``kde@<catalogue>``: fit the incumbent adaptive kernel density, every seed.

Reads the ``kde`` section of params.yaml (the search grids of
:class:`pipeline.variants.kde.KDEConfig`), ``train.seeds`` and ``train.common.schedule`` (the
forward schedule of the kernel mixture's score field, shared with the score models). Per seed
the bandwidths are chosen on the seed's validation part and the seed folder
``data/models/<catalogue>/kde/seed<k>/`` gets ``kde.safetensors``, ``meta.json`` (the chosen
parameters and validation NLL) and the model card, so evaluate@, maps@ and the query verbs read
it as any other model. Seconds per seed, so no task runner: a plain loop.

Usage::

    python -m stages.kde --catalogue earthquake
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.stopping import StopRequested
from stages.common import load_params, section, write_json_atomic

SECTION = "kde"
EXPECTED: tuple[type[Exception], ...] = (KeyError, ValueError, FileNotFoundError, StopRequested)
"""Errors that mean bad input or a stop request: one line, no traceback."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.kde", description=__doc__)
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--timings-dir", type=Path, default=Path("reports/timings"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Fit and write every seed; print one line per seed.

    Raises:
        KeyError, ValueError: On bad params (one line naming the key) or too small a split.
        FileNotFoundError: If the catalogue or split is missing.
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM (between seeds).
    """
    from pipeline.checkpoints import write_model_card
    from pipeline.data.splits import load_split
    from pipeline.stopping import check_stop
    from pipeline.variants.kde import KDEConfig, fit_kde, save_kde

    params = load_params(args.params)
    cfg = KDEConfig.from_dict(section(params, SECTION, args.params), where=f"{args.params}: kde")
    train = section(params, "train", args.params)
    seeds = [int(s) for s in train["seeds"]]
    schedule = dict((train.get("common") or {}).get("schedule") or {})
    if not schedule:
        raise KeyError(f"{args.params}: train.common.schedule is needed (the kde score field)")
    processed = args.processed_dir / f"{args.catalogue}.nc"
    split_csv = args.splits_dir / f"{args.catalogue}.csv"
    out_root = args.models_dir / args.catalogue / "kde"
    rows = []
    for seed in seeds:
        check_stop(f"kde seed {seed}")
        parts = load_split(processed, split_csv, seed)
        if len(parts["val"]) == 0 or len(parts["train"]) < 2:
            raise ValueError(
                f"{split_csv}: seed {seed} has {len(parts['train'])} training and "
                f"{len(parts['val'])} validation events; kde needs >= 2 and >= 1"
            )
        start = time.perf_counter()
        fit = fit_kde(parts["train"], parts["val"], cfg)
        seconds = time.perf_counter() - start
        seed_dir = out_root / f"seed{seed}"
        save_kde(seed_dir, fit, cfg)
        card = {"manifold": {"name": "sphere", "dim": 2}, "schedule": schedule, "kde": fit.chosen}
        write_model_card(seed_dir, "kde", card)
        chosen = ", ".join(f"{k} {v:g}" for k, v in fit.chosen.items())
        print(
            f"kde {args.catalogue} seed {seed}: val NLL {fit.val_nll:+.3f} ({chosen}; "
            f"{len(fit.search)} points searched, {seconds:.1f} s)",
            flush=True,
        )
        rows.append({"seed": seed, "steps": 0, "resumed_from": 0, "train_seconds": seconds})
    write_json_atomic({"per_seed": rows}, args.timings_dir / args.catalogue / "kde.json")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 1 on bad input, 130/143 on a stop request."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(lambda: run(args), f"kde-{args.catalogue}", EXPECTED, "kde")


if __name__ == "__main__":
    sys.exit(main())
