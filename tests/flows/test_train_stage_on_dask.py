"""A train stage's seeds on a Dask LocalCluster give the same weights as on threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from stages import ingest, split, train

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _params(tmp_path: Path, spec: dict[str, object], runner: dict[str, object]) -> Path:
    params = {
        "ingest": {"max_reject_fraction": 0.01, "catalogues": {"tiny": spec}},
        "split": {"protocol": "hash", "seeds": [0, 1], "fractions": [0.8, 0.1, 0.1]},
        "train": {
            "models": ["rsgm"],
            "seeds": [0, 1],
            "runner": runner,
            "torch_threads": 1,
            "common": {
                "manifold": {"name": "sphere", "dim": 2},
                "schedule": {"kind": "linear", "beta_0": 0.001, "beta_1": 5.0},
                "network": {"hidden": 16, "depth": 2},
                "optim": {"batch_size": 16, "checkpoint_every": 4, "log_every": 2, "device": "cpu"},
            },
            "rsgm": {"score_scaling": "inv_std", "optim": {"steps": 6}},
        },
    }
    path = tmp_path / f"params-{runner['kind']}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_train_seeds_on_local_dask_cluster_match_threads(tiny_catalogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    thread_params = _params(tmp_path, tiny_catalogue.spec, {"kind": "thread", "max_workers": 2})
    dask_params = _params(
        tmp_path, tiny_catalogue.spec, {"kind": "dask", "max_workers": 2, "processes": False}
    )
    common = ["--catalogue", "tiny", "--params", str(thread_params)]
    assert ingest.main([*common, "--raw-dir", str(tiny_catalogue.raw_dir),
                        "--processed-dir", str(data / "processed"),
                        "--rejects-dir", str(data / "rejects"),
                        "--metrics-dir", str(tmp_path / "reports")]) == 0  # fmt: skip
    assert split.main([*common, "--processed-dir", str(data / "processed"),
                       "--splits-dir", str(data / "splits")]) == 0  # fmt: skip
    weights = {}
    for name, params in (("thread", thread_params), ("dask", dask_params)):
        args = ["--catalogue", "tiny", "--model", "rsgm", "--params", str(params),
                "--processed-dir", str(data / "processed"), "--splits-dir", str(data / "splits"),
                "--models-dir", str(tmp_path / name / "models"),
                "--plots-dir", str(tmp_path / name / "plots")]  # fmt: skip
        assert train.main(args) == 0
        weights[name] = {
            seed: load_file(
                tmp_path / name / "models/tiny/rsgm" / f"seed{seed}" / "ema.safetensors"
            )
            for seed in (0, 1)
        }
    for seed in (0, 1):
        for key, value in weights["thread"][seed].items():
            assert (value == weights["dask"][seed][key]).all(), (seed, key)
    # Different seeds give different models.
    first = next(iter(weights["thread"][0]))
    assert not (weights["thread"][0][first] == weights["thread"][1][first]).all()
