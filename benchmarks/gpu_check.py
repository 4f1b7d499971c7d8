"""The GPU check (issue 13): trainer cost per step, PF-ODE cost and a fixed-budget NLL, on a device.

Prints, for the device it runs on (``--device``, default CUDA when available):

1. ms per training step of one seed at the default CPU size (params.yaml ``train`` config of
   earthquake/rsgm) and at the ``paper`` profile's size (MLP 5×512, batch 512), after a
   warm-up (seeds one after another: the path the ``paper`` profile uses today);
2. PF-ODE seconds per 1000 points (dopri5, 1e-5, exact divergence) of that model;
3. the earthquake seed-0 test NLL after ``--steps`` steps of the CPU-size config.

No ensemble (K seeds in one vectorised network) exists yet, so nothing here measures one.
Needs only the git-tracked files: it ingests and splits earthquake itself when
``data/processed/earthquake.nc`` is missing. Within 8 minutes on one H200-class GPU with the
defaults. Run::

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
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import zoo  # noqa: E402
from pipeline.config import deep_merge  # noqa: E402
from pipeline.data.splits import load_split  # noqa: E402
from pipeline.likelihood import pf_ode_logp  # noqa: E402
from pipeline.sde.brownian import BrownianMotion  # noqa: E402
from pipeline.training import TrainConfig, load_checkpoint_weights, resolve_device, train  # noqa: E402
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


def _train(
    config: dict, data: torch.Tensor, steps: int, out: Path, device: str
) -> tuple[torch.nn.Module, float]:
    """Train ``steps`` steps after a 50-step warm-up; return the model and ms per step."""
    manifold = zoo.build_manifold(config.get("manifold"))
    schedule = zoo.build_schedule(config["schedule"])
    net = zoo.build_network("rsgm", config, manifold, seed=0)
    loss_fn = zoo.build_loss("rsgm", config, manifold, schedule)
    optim = {**config.get("optim", {}), "device": device, "seed": 0}
    optim["checkpoint_every"] = 10**9  # only the final checkpoint: time the steps
    warm = TrainConfig.from_dict({**optim, "steps": 50})
    train(net, loss_fn, data, warm, out, progress=False)
    cfg = TrainConfig.from_dict({**optim, "steps": 50 + steps})
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(net, loss_fn, data, cfg, out, progress=False)
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    return net, 1000.0 * (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    """Run the three checks; print them and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--timing-steps", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20000, help="steps before the NLL")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = str(resolve_device(args.device))
    params = load_params(ROOT / "params.yaml")
    cpu_cfg = model_config(params["train"], "earthquake", "rsgm")
    paper = yaml.safe_load((ROOT / "profiles/paper.yaml").read_text())["train"]
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
        for label, cfg in (("cpu size", cpu_cfg), ("paper size", paper_cfg)):
            _, ms = _train(cfg, train_x, args.timing_steps, Path(tmp) / label, device)
            net = cfg["network"]
            print(f"{label}: MLP {net.get('depth')}x{net.get('hidden')}, batch "
                  f"{cfg['optim']['batch_size']}: {ms:.2f} ms per seed-step")  # fmt: skip
            record[f"ms_per_step_{label.split()[0]}"] = ms
        out = Path(tmp) / "nll"
        model, ms = _train(cpu_cfg, train_x, args.steps, out, device)
        manifold = zoo.build_manifold(cpu_cfg.get("manifold"))
        schedule = zoo.build_schedule(cpu_cfg["schedule"])
        eval_net = zoo.build_network("rsgm", cpu_cfg, manifold)
        eval_net.load_state_dict(load_checkpoint_weights(out, "ema"))
        eval_net.to(device).eval()
        score = zoo.score_field("rsgm", eval_net, manifold, schedule)
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
    if args.out is not None:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
