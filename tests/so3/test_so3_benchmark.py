"""The SO(3) benchmark: its data files (law, parts, exact density, errors), the per-mixture
table (statistics, measures, checks) and the report section."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.report.document import Table, Text
from pipeline.report.so3 import so3_blocks
from pipeline.so3.benchmark_data import (
    benchmark_path,
    load_benchmark,
    make_benchmark,
    write_benchmark,
)
from pipeline.so3.manifold import SO3
from pipeline.so3_benchmark import ANGLE_SHIFT, mixture_table, model_configs, trained_kinds
from tests.errors import raises_naming

SO = SO3()


def test_files_are_deterministic_split_in_order_and_carry_the_exact_density(tmp_path: Path) -> None:
    arrays = make_benchmark(8, seed=3, n_train=50, n_val=20, n_test=30)
    again = make_benchmark(8, seed=3, n_train=50, n_val=20, n_test=30)
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, again[key])
    assert arrays["train"].shape == (50, 9) and arrays["test"].shape == (30, 9)
    path = write_benchmark(benchmark_path(tmp_path, 8, 3), arrays)
    assert path == tmp_path / "m8" / "seed3.npz"
    data = load_benchmark(path)
    assert SO.check_point(torch.as_tensor(data.train), atol=1e-10)
    # the stored true log-density is the law's, recomputed from the stored law
    recomputed = data.law.log_prob(torch.as_tensor(data.test)).numpy()
    np.testing.assert_allclose(data.test_logp, recomputed, rtol=0, atol=1e-12)
    # another seed is another law
    other = make_benchmark(8, seed=4, n_train=5, n_val=5, n_test=5)
    assert not np.allclose(other["means"], arrays["means"])


def test_the_data_law_reproduces_the_published_scale() -> None:
    # With the reference's scale convention and measure, the true density's test
    # log-likelihood sits at the published rows (RSGM 0.89 / 0.20 / -0.49): each doubling of M
    # costs log 2 (components barely overlap).
    means = []
    for m in (16, 32, 64):
        lls = [make_benchmark(m, s, 5, 5, 1500)["test_logp"].mean() + ANGLE_SHIFT for s in (0, 1)]
        means.append(float(np.mean(lls)))
    assert means[0] == pytest.approx(0.89, abs=0.15)
    assert means[1] == pytest.approx(0.20, abs=0.15)
    assert means[2] == pytest.approx(-0.49, abs=0.15)
    assert means[0] - means[1] == pytest.approx(math.log(2), abs=0.15)


def test_load_errors_name_the_file_the_array_and_the_row(tmp_path: Path) -> None:
    with raises_naming(FileNotFoundError, "missing.npz", "dvc repro so3_data"):
        load_benchmark(tmp_path / "missing.npz")
    arrays = make_benchmark(4, seed=0, n_train=10, n_val=5, n_test=5)
    broken = dict(arrays)
    del broken["test_logp"]
    write_benchmark(tmp_path / "a.npz", broken)
    with raises_naming(ValueError, "a.npz", "'test_logp'"):
        load_benchmark(tmp_path / "a.npz")
    bad = {k: v.copy() for k, v in arrays.items()}
    bad["train"][7] = bad["train"][7] * 1.1  # no longer orthogonal
    write_benchmark(tmp_path / "b.npz", bad)
    with raises_naming(ValueError, "b.npz", "'train'", "row 7"):
        load_benchmark(tmp_path / "b.npz")
    bad = {k: v.copy() for k, v in arrays.items()}
    bad["test"] = bad["test"][:, :4]
    write_benchmark(tmp_path / "c.npz", bad)
    with raises_naming(ValueError, "c.npz", "'test'", "(5, 4)"):
        load_benchmark(tmp_path / "c.npz")
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with raises_naming(ValueError, "d.npz"):
        load_benchmark(tmp_path / "d.npz")


def _row(seed: int, true: float, lls: dict[str, float]) -> dict:
    return {
        "seed": seed,
        "steps": 100,
        "train_seconds": 1.0,
        "true_loglik": true,
        "scores": {k: {"loglik": v, "nfe": 30, "eval_seconds": 0.5} for k, v in lls.items()},
    }


def test_mixture_table_statistics_measures_and_checks() -> None:
    true = [0.0, 0.1, 0.2]
    results = {
        "rsgm": [_row(s, t, {"rsgm": t - 0.3 - 0.1 * s}) for s, t in enumerate(true)],
        "ambient_rb": [
            _row(s, t, {"ambient_rb": t - 1.0, "ambient_rb_corrected": t - 2.0})
            for s, t in enumerate(true)
        ],
    }
    table = mixture_table(16, results)
    rsgm = table["models"]["rsgm"]
    assert rsgm["per_seed"] == pytest.approx([-0.3, -0.3, -0.3])
    assert rsgm["frobenius"]["mean"] == pytest.approx(-0.3)
    assert rsgm["angle"]["mean"] == pytest.approx(-0.3 + math.log(2 * math.sqrt(2)))
    # gap paired by seed: 0.3, 0.4, 0.5 -> mean 0.4, CI t_{0.975,2} * std / sqrt(3)
    assert rsgm["gap_to_true"]["mean"] == pytest.approx(0.4)
    assert rsgm["gap_to_true"]["ci95"] == pytest.approx(4.303 * 0.1 / math.sqrt(3), rel=1e-3)
    assert table["models"]["ambient_rb_corrected"]["gap_to_true"]["mean"] == pytest.approx(2.0)
    assert table["published"]["RSGM"] == {"angle": 0.89, "pm": 0.03}
    assert "seconds" not in str(table)  # wall-clock values live in the timings file
    one = mixture_table(64, {"rsgm": results["rsgm"][:1]})
    assert one["models"]["rsgm"]["frobenius"]["ci95"] is None  # JSON has no NaN
    results["rsgm"][1]["true_loglik"] = 9.0
    with raises_naming(ValueError, "M=16", "ambient_rb"):
        mixture_table(16, results)


def test_model_configs_merge_common_and_check_the_manifold() -> None:
    section = {
        "models": ["rsgm", "ambient_rb_corrected"],
        "common": {
            "manifold": {"name": "so3"},
            "schedule": {"kind": "linear", "beta_0": 1e-3, "beta_1": 30.0, "T": 1.0},
            "network": {"hidden": 16, "depth": 2},
        },
        "rsgm": {"loss": {"kind": "dsm"}},
        "ambient_rb": {"loss": {"eps": 1e-3}},
    }
    assert trained_kinds(section["models"]) == ["rsgm", "ambient_rb"]
    configs = model_configs(section)
    assert configs["rsgm"]["network"] == {"hidden": 16, "depth": 2}
    assert configs["ambient_rb"]["loss"] == {"eps": 1e-3}
    section["common"]["manifold"] = {"name": "sphere", "dim": 2}
    with raises_naming(ValueError, "so3.rsgm", "{name: so3}"):
        model_configs(section)


def test_report_section_rows_and_no_section_without_tables() -> None:
    assert so3_blocks([]) == []
    true = [0.0, 0.1]
    results = {"rsgm": [_row(s, t, {"rsgm": t - 0.5}) for s, t in enumerate(true)]}
    blocks = so3_blocks([mixture_table(32, results), mixture_table(16, results)])
    table = blocks[0]
    assert isinstance(table, Table) and isinstance(blocks[1], Text)
    assert table.header == ["method", "M = 16", "M = 32"]
    labels = [row[0].text for row in table.rows]
    assert labels == [
        "Moser Flow (published)",
        "Exp-wrapped SGM (published)",
        "RSGM (published)",
        "true density (same test points)",
        "rsgm",
    ]
    assert table.rows[2][1].text == "+0.89 ± 0.03"
    expected = 0.05 - 0.5 + ANGLE_SHIFT
    assert table.rows[4][1].text.startswith(f"{expected:+.3f} ± ")
