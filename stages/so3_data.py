"""DVC stage ``so3_data``: the SO(3) benchmark's mixture laws and their draws, one file per
(M, seed).

Reads the ``so3_data`` section of params.yaml::

    so3_data:
      mixtures: [16, 32, 64]   # components M of the wrapped-normal mixtures
      seeds: [0, 1, 2, 3, 4]   # one law and one sample per seed
      n_train: 20000
      n_val: 2000
      n_test: 2000
      precision_shape: 100.0   # Gamma shape of the components' precisions (the reference: 100)

and writes ``<out-dir>/m<M>/seed<k>.npz`` (see :mod:`pipeline.so3.benchmark_data`).

Usage::

    python -m stages.so3_data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config.schema import ParamsError
from pipeline.so3.benchmark_data import benchmark_path, make_benchmark, write_benchmark
from stages.common import load_params, section

SECTION = "so3_data"
OUT_DIR = Path("data/so3")
_KEYS = ("mixtures", "seeds", "n_train", "n_val", "n_test", "precision_shape")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.so3_data", description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Path]:
    """Write every (M, seed) file; return their paths.

    Raises:
        KeyError: On a missing key of the section.
        pipeline.config.schema.ParamsError: On a bad value.
    """
    params = section(load_params(args.params), SECTION, args.params)
    missing = [k for k in _KEYS if k not in params]
    if missing:
        raise KeyError(f"{args.params}: missing {SECTION} keys {missing}")
    written = []
    for m in params["mixtures"]:
        for seed in params["seeds"]:
            arrays = make_benchmark(
                int(m),
                int(seed),
                int(params["n_train"]),
                int(params["n_val"]),
                int(params["n_test"]),
                float(params["precision_shape"]),
            )
            path = write_benchmark(benchmark_path(args.out_dir, int(m), int(seed)), arrays)
            print(
                f"so3_data M={m} seed {seed}: {arrays['train'].shape[0]} train points, "
                f"true test log-likelihood {float(arrays['test_logp'].mean()):+.3f} (Frobenius)"
            )
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on bad params."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(
        lambda: run(args), "so3_data", (KeyError, ParamsError, ValueError), "so3_data"
    )


if __name__ == "__main__":
    sys.exit(main())
