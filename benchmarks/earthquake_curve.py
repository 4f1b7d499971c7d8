"""Test NLL versus CPU training minutes on earthquake, published split seed 0.

Trains a model kind with the config the pipeline uses (``train.common`` <- ``train.<model>``
<- ``train.overrides.earthquake`` from params.yaml, any option below overriding it), by
wall-clock budget, and evaluates the EMA weights with the PF-ODE (dopri5, 1e-5, exact
divergence, uniform base) after each budget in ``--minutes`` (cumulative: training resumes
from its checkpoint). Prints the DESIGN.md "Known bars" of a plain RSGM beside our numbers.

Needs ``data/processed/earthquake.nc`` and ``data/splits/earthquake.csv`` (``dvc repro
split@earthquake``). Run::

    python benchmarks/earthquake_curve.py --minutes 1 2 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._overrides import apply_overrides  # noqa: E402
from pipeline.checkpoints import load_checkpoint_weights  # noqa: E402
from pipeline.config.train import TrainConfig  # noqa: E402
from pipeline.data.splits import load_split  # noqa: E402
from pipeline.likelihood import pf_ode_logp  # noqa: E402
from pipeline.training import train  # noqa: E402
from pipeline.variants import build_manifold, build_schedule, get_variant  # noqa: E402
from stages.common import load_params  # noqa: E402
from stages.train_config import model_config  # noqa: E402

# DESIGN.md "Known bars": plain RSGM (MLP 256x4 sine, exact targets, uniform t) on this machine.
KNOWN_BARS = {
    "earthquake": {2: 0.11, 5: -0.07, 12: -0.13},
    "fire": {2: -0.75, 5: -0.93, 12: -1.02},
    "flood": {2: 0.80, 5: 0.53, 12: 0.45},
    "volcano": {2: -2.45, 5: -2.88},
}


def main(argv: list[str] | None = None) -> int:
    """Run the curve; print one line per budget and write a JSON record."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalogue", default="earthquake")
    parser.add_argument("--model", default="rsgm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 2.0, 5.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geosgm_curve"))
    parser.add_argument("--out", type=Path, default=None, help="JSON record (optional)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. network.time_embedding=log (YAML value)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml")
    config = model_config(params["train"], args.catalogue, args.model)
    config = apply_overrides(config, args.set)
    parts = load_split(
        ROOT / f"data/processed/{args.catalogue}.nc",
        ROOT / f"data/splits/{args.catalogue}.csv",
        args.seed,
    )
    data = torch.as_tensor(parts["train"], dtype=torch.float32)
    test = torch.as_tensor(parts["test"], dtype=torch.float32)
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    net = get_variant(args.model).network(config, manifold, seed=args.seed)
    loss_fn = get_variant(args.model).build_loss(config, manifold, schedule)
    optim = dict(config.get("optim", {}))
    out_dir = args.workdir / f"{args.catalogue}-{args.model}-seed{args.seed}"
    shutil.rmtree(out_dir, ignore_errors=True)

    eval_net = get_variant(args.model).network(config, manifold)
    score_fn = get_variant(args.model).score_field(eval_net, manifold, schedule)
    bars = KNOWN_BARS.get(args.catalogue, {})
    print(f"{args.catalogue}/{args.model} seed {args.seed}: {len(data)} train, {len(test)} test")
    print(f"config: {json.dumps(config)}")
    print(
        f"{'minutes':>8} {'steps':>7} {'ms/step':>8} {'test NLL':>9} {'NFE':>5} "
        f"{'s/1000 pts':>10} {'known bar':>10}"
    )
    rows = []
    for minutes in sorted(args.minutes):
        cfg = TrainConfig.from_dict(
            {**optim, "steps": 10**9, "max_seconds": 60.0 * minutes, "seed": args.seed}
        )
        result = train(net, loss_fn, data, cfg, out_dir, progress=False)
        eval_net.load_state_dict(load_checkpoint_weights(out_dir, "ema"))
        eval_net.eval()
        start = time.perf_counter()
        logp, nfe = pf_ode_logp(
            score_fn,
            get_variant(args.model).build_process(config, manifold, schedule),
            test,
            rtol=1e-5,
            atol=1e-5,
        )
        nll_s = time.perf_counter() - start
        nll = float(-logp.mean())
        bar = bars.get(int(minutes)) if float(minutes).is_integer() else None
        row = {
            "minutes": minutes,
            "steps": result.steps,
            "ms_per_step": 1000.0 * result.wall_seconds / max(result.steps, 1),
            "test_nll": nll,
            "nfe": nfe,
            "nll_seconds_per_1000": 1000.0 * nll_s / len(test),
            "known_bar": bar,
        }
        rows.append(row)
        bar_text = f"{bar:+.2f}" if bar is not None else "—"
        print(
            f"{minutes:>8.1f} {result.steps:>7d} {row['ms_per_step']:>8.2f} {nll:>+9.3f} "
            f"{nfe:>5d} {row['nll_seconds_per_1000']:>10.2f} {bar_text:>10}",
            flush=True,
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"config": config, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
