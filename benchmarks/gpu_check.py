"""The GPU check (issue 13): cost per training step, PF-ODE cost, NLL and the paper plan.

Prints, for the device it runs on (``--device``, default CUDA when available):

1. ms per training step of one seed at the default CPU size (params.yaml ``train`` config of
   earthquake/rsgm) and at the ``paper`` profile's size (MLP 5×512, batch 512), after a
   warm-up (seeds one after another: the path the ``paper`` profile uses);
2. the earthquake seed-0 test NLL after ``--steps`` steps of the CPU-size config (one seed,
   :func:`pipeline.training.train`), and its PF-ODE seconds per 1000 points;
3. the ``paper`` profile's plan from those numbers (:func:`paper_plan`): GPU-hours of the
   published protocol (4 catalogues × 3 trained models × 5 seeds × the profile's steps, plus
   the evaluation's PF-ODE solves) and the steps per seed that fit in 2 hours.

(The K-seed vmapped ensemble it used to time was deleted with ``pipeline/ensemble/``, which no
stage used; a GPU profile that needs it would bring it back as a training option.)

Needs only the git-tracked files: it ingests and splits earthquake itself when
``data/processed/earthquake.nc`` is missing. A quick run anywhere (CPU: about a minute)::

    python benchmarks/gpu_check.py --timing-steps 5 --warmup-steps 2 --steps 5

and on the GPU::

    python benchmarks/gpu_check.py --out gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.checkpoints import load_checkpoint_weights  # noqa: E402
from pipeline.config import deep_merge, read_yaml_mapping  # noqa: E402
from pipeline.config.train import TrainConfig  # noqa: E402
from pipeline.data.splits import load_split  # noqa: E402
from pipeline.devices import resolve_device  # noqa: E402
from pipeline.likelihood import pf_ode_logp  # noqa: E402
from pipeline.sde.brownian import BrownianMotion  # noqa: E402
from pipeline.training import train  # noqa: E402
from pipeline.variants import build_manifold, build_schedule, get_variant  # noqa: E402
from stages.common import load_params  # noqa: E402
from stages.train_config import model_config  # noqa: E402


def _data(catalogue: str) -> tuple[torch.Tensor, torch.Tensor]:
    processed = ROOT / f"data/processed/{catalogue}.nc"
    splits = ROOT / f"data/splits/{catalogue}.csv"
    if not processed.is_file() or not splits.is_file():
        from stages import ingest, split

        assert ingest.main(["--catalogue", catalogue]) == 0
        assert split.main(["--catalogue", catalogue]) == 0
    parts = load_split(processed, splits, 0)
    return (
        torch.as_tensor(parts["train"], dtype=torch.float32),
        torch.as_tensor(parts["test"], dtype=torch.float32),
    )


#: The published protocol: catalogues x trained model kinds x seeds (DESIGN.md).
PAPER_CATALOGUES = ("volcano", "earthquake", "flood", "fire")
PAPER_TRAINED_MODELS = 3
PAPER_EVALUATED_MODELS = 4  # ambient_rb_corrected is evaluated on ambient_rb's weights
PAPER_SEEDS = 5
BUDGET_HOURS = 2.0


def eval_points_per_seed() -> int:
    """Test + validation points of one seed over the four catalogues (published splits)."""
    total = 0
    for catalogue in PAPER_CATALOGUES:
        path = ROOT / f"data/published_splits/{catalogue}_rsgm_splits_seed0-4.csv"
        with path.open() as fh:
            next(fh)
            total += sum(1 for line in fh if line.split(",")[1].strip() in ("test", "val"))
    return total


def paper_plan(
    ms_per_seed_step: float,
    ode_s_per_1000: float,
    steps: int,
    *,
    eval_points: int,
    grid_points: int,
    budget_hours: float = BUDGET_HOURS,
) -> dict[str, float]:
    """GPU-hours of the published protocol from measured unit costs, and the steps that fit.

    Training: catalogues x trained models x seeds x ``steps`` seed-steps at
    ``ms_per_seed_step`` (the ambient models' step taken at rsgm's: on the CPU it is 0.9x).
    Evaluation: the PF-ODE of every evaluated model and seed on the test + validation points
    (``eval_points`` per seed over the catalogues) plus the normalisation grid of every seed
    (``grid_points`` per catalogue, model and seed), at ``ode_s_per_1000``.

    Returns:
        Training, evaluation and total hours, and the largest step count per seed (rounded
        down to 1000) whose total fits ``budget_hours``.
    """
    runs = len(PAPER_CATALOGUES) * PAPER_TRAINED_MODELS * PAPER_SEEDS
    train_h = runs * steps * ms_per_seed_step / 3.6e6
    points = PAPER_EVALUATED_MODELS * PAPER_SEEDS * eval_points
    points += len(PAPER_CATALOGUES) * PAPER_EVALUATED_MODELS * PAPER_SEEDS * grid_points
    eval_h = points / 1000 * ode_s_per_1000 / 3600
    spare_ms = max(budget_hours - eval_h, 0.0) * 3.6e6
    fit_steps = int(spare_ms / (runs * ms_per_seed_step) // 1000 * 1000)
    return {"train_hours": train_h, "eval_hours": eval_h, "total_hours": train_h + eval_h,
            "steps_within_budget": fit_steps}  # fmt: skip


def _sync(device: str) -> None:
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()


def _train(
    config: dict, data: torch.Tensor, steps: int, out: Path, device: str, warmup: int = 50
) -> tuple[torch.nn.Module, float]:
    """Train ``steps`` steps after a ``warmup``-step warm-up; return the model and ms per step."""
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    net = get_variant("rsgm").network(config, manifold, seed=0)
    loss_fn = get_variant("rsgm").build_loss(config, manifold, schedule)
    optim = {**config.get("optim", {}), "device": device, "seed": 0}
    optim["checkpoint_every"] = 10**9  # only the final checkpoint: time the steps
    warm = TrainConfig.from_dict({**optim, "steps": warmup})
    train(net, loss_fn, data, warm, out, progress=False)
    cfg = TrainConfig.from_dict({**optim, "steps": warmup + steps})
    _sync(device)
    start = time.perf_counter()
    train(net, loss_fn, data, cfg, out, progress=False)
    _sync(device)
    return net, 1000.0 * (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    """Run the checks; print them and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--timing-steps", type=int, default=1000)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20000, help="steps before the NLL")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = str(resolve_device(args.device))
    params = load_params(ROOT / "params.yaml")
    cpu_cfg = model_config(params["train"], "earthquake", "rsgm")
    paper = read_yaml_mapping(ROOT / "profiles/paper.yaml")["train"]
    paper_size = {
        "network": paper["common"]["network"],
        "optim": {"batch_size": paper["common"]["optim"]["batch_size"]},
    }
    paper_cfg = deep_merge(cpu_cfg, paper_size)
    train_x, test_x = _data("earthquake")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    record: dict[str, object] = {"device": device, "device_name": name}
    print(f"device: {device} ({name}); torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        warmup = args.warmup_steps
        for label, cfg in (("cpu size", cpu_cfg), ("paper size", paper_cfg)):
            size = label.split()[0]
            _, ms = _train(cfg, train_x, args.timing_steps, Path(tmp) / label, device, warmup)
            net = cfg["network"]
            print(f"{label}: MLP {net.get('depth')}x{net.get('hidden')}, batch "
                  f"{cfg['optim']['batch_size']}: {ms:.2f} ms per seed-step")  # fmt: skip
            record[f"ms_per_step_{size}"] = ms
        out = Path(tmp) / "nll"
        model, ms = _train(cpu_cfg, train_x, args.steps, out, device, warmup)
        manifold = build_manifold(cpu_cfg.get("manifold"))
        schedule = build_schedule(cpu_cfg["schedule"])
        eval_net = get_variant("rsgm").network(cpu_cfg, manifold)
        eval_net.load_state_dict(load_checkpoint_weights(out, "ema"))
        eval_net.to(device).eval()
        score = get_variant("rsgm").score_field(eval_net, manifold, schedule)
        start = time.perf_counter()
        logp, nfe = pf_ode_logp(
            score, BrownianMotion(manifold, schedule), test_x.to(device), rtol=1e-5, atol=1e-5
        )
        seconds = time.perf_counter() - start
        shutil.rmtree(out, ignore_errors=True)
    nll = float(-logp.double().mean())
    print(f"PF-ODE: {1000 * seconds / len(test_x):.2f} s per 1000 points (NFE {nfe})")
    print(
        f"earthquake seed 0, cpu size, {args.steps} steps ({ms:.2f} ms/step): test NLL {nll:+.3f}"
    )
    record.update(pf_ode_seconds_per_1000=1000 * seconds / len(test_x), nfe=nfe,
                  steps=args.steps, test_nll=nll)  # fmt: skip
    paper_steps = int(paper["rsgm"]["optim"]["steps"])
    grid = params["evaluate"]["normalization_grid"]
    best_ms = record["ms_per_step_paper"]
    # The PF-ODE was timed at the CPU size; at the paper size each evaluation costs about the
    # ratio of the two sizes' training steps more.
    size_ratio = record["ms_per_step_paper"] / record["ms_per_step_cpu"]
    plan = paper_plan(
        float(best_ms), 1000 * seconds / len(test_x) * float(size_ratio), paper_steps,
        eval_points=eval_points_per_seed(), grid_points=int(grid[0]) * int(grid[1]),
    )  # fmt: skip
    print(
        f"paper protocol ({len(PAPER_CATALOGUES)} catalogues x {PAPER_TRAINED_MODELS} models x "
        f"{PAPER_SEEDS} seeds x {paper_steps} steps at {best_ms:.3f} ms per seed-step, "
        f"seeds one after another): training {plan['train_hours']:.2f} h + "
        f"evaluation {plan['eval_hours']:.2f} h = {plan['total_hours']:.2f} h; steps per seed "
        f"within {BUDGET_HOURS:g} h: {plan['steps_within_budget']}"
    )
    record.update({f"plan_{k}": v for k, v in plan.items()})
    if args.out is not None:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
