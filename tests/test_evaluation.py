"""Evaluation: seed statistics, model loading round trip, summary schema, the model zoo."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.checkpoints import write_model_card
from pipeline.config.train import TrainConfig
from pipeline.evaluation import generate_samples, load_trained, log_density, normalization
from pipeline.metrics import format_nll_table, nll_statistics
from pipeline.report.summary import build_summary
from pipeline.training import train
from pipeline.variants import build_manifold, build_schedule, check_kind, get_variant
from tests.errors import raises_naming

CONFIG = {
    "manifold": {"name": "sphere", "dim": 2},
    "schedule": {"kind": "linear", "beta_0": 0.001, "beta_1": 5.0, "T": 1.0},
    "network": {"hidden": 16, "depth": 2, "activation": "sine"},
    "loss": {"t_sampler": "log_uniform", "eps": 0.001},
}


def test_nll_statistics_match_published_formula() -> None:
    values = [0.1, -0.2, 0.05, 0.3, -0.1]
    stats = nll_statistics(values)
    std = float(np.std(values, ddof=1))
    assert stats["mean"] == pytest.approx(float(np.mean(values)))
    assert stats["std"] == pytest.approx(std)
    assert stats["ci95"] == pytest.approx(2.776 * std / math.sqrt(5))
    # Other seed counts use the Student-t quantile t_{0.975, n-1}.
    assert nll_statistics([1.0, 2.0, 4.0])["ci95"] == pytest.approx(
        4.303 * float(np.std([1.0, 2.0, 4.0], ddof=1)) / math.sqrt(3)
    )
    one = nll_statistics([0.25])
    assert one["mean"] == 0.25 and math.isnan(one["std"]) and math.isnan(one["ci95"])
    with pytest.raises(ValueError):
        nll_statistics([])
    with pytest.raises(ValueError):
        nll_statistics([0.0, float("nan")])


@pytest.mark.parametrize("kind", ["rsgm", "ambient_raw", "ambient_rb", "ambient_rb_corrected"])
def test_zoo_score_fields_are_tangent(kind: str) -> None:
    cfg = {**CONFIG, "score_scaling": "inv_std"} if kind == "rsgm" else CONFIG
    manifold = build_manifold(cfg["manifold"])
    schedule = build_schedule(cfg["schedule"])
    net = get_variant(get_variant(kind).trained_from).network(cfg, manifold)
    score = get_variant(kind).score_field(net, manifold, schedule)
    x = manifold.random_uniform(64, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    v = score(x, torch.full((64,), 0.3))
    assert v.shape == (64, 3)
    assert torch.allclose((v * x).sum(-1), torch.zeros(64), atol=1e-5)


def test_registry_rejects_unknown_kind_and_training_the_corrected_model(tmp_path: Path) -> None:
    with raises_naming(ValueError, "'rsgm2'"):
        check_kind("rsgm2")
    corrected = get_variant("ambient_rb_corrected")
    assert (corrected.trained_from, corrected.fitted_by) == ("ambient_rb", "derive")
    x = build_manifold(None).random_uniform(8, generator=torch.Generator().manual_seed(0))
    with raises_naming(ValueError, "'ambient_rb_corrected'", "derive"):
        corrected.fit(CONFIG, {"train": x, "val": x}, 0, tmp_path / "seed0")
    assert not (tmp_path / "seed0").exists()


def _train_tiny(tmp_path: Path, kind: str) -> Path:
    manifold = build_manifold(CONFIG["manifold"])
    schedule = build_schedule(CONFIG["schedule"])
    torch.manual_seed(0)
    net = get_variant(kind).network(CONFIG, manifold)
    loss_fn = get_variant(kind).build_loss(CONFIG, manifold, schedule)
    data = manifold.random_uniform(
        256, dtype=torch.float32, generator=torch.Generator().manual_seed(1)
    )
    out = tmp_path / kind / "seed0"
    write_model_card(out, kind, CONFIG)
    cfg = TrainConfig(steps=10, batch_size=32, checkpoint_every=5, log_every=5, device="cpu")
    train(net, loss_fn, data, cfg, out, progress=False)
    return out


def test_load_trained_round_trip_and_density(tmp_path: Path) -> None:
    out = _train_tiny(tmp_path, "ambient_rb")
    trained = load_trained(out, device="cpu")
    corrected = load_trained(out, device="cpu", kind="ambient_rb_corrected")
    x = trained.manifold.random_uniform(
        20, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    logp, nfe = log_density(trained, x.numpy(), rtol=1e-4, atol=1e-4)
    logp_c, _ = log_density(corrected, x.numpy(), rtol=1e-4, atol=1e-4)
    assert logp.shape == (20,) and nfe > 0 and np.isfinite(logp).all()
    # On S² the curvature operator (1 - d/2) Id vanishes: the corrected model is the same model.
    np.testing.assert_allclose(logp_c, logp, atol=1e-6)
    # A barely trained model is a density: it integrates to 1 over the sphere.
    assert normalization(trained, 24, 48, rtol=1e-4, atol=1e-4) == pytest.approx(1.0, abs=1e-2)
    samples = generate_samples(trained, 50, 20, seed=0)
    assert samples.shape == (50, 3)
    np.testing.assert_allclose(np.linalg.norm(samples, axis=-1), 1.0, atol=1e-6)
    with raises_naming(ValueError, "'ambient_rb'", "'rsgm'"):
        load_trained(out, device="cpu", kind="rsgm")
    with raises_naming(FileNotFoundError, str(tmp_path / "nothing" / "model.json")):
        load_trained(tmp_path / "nothing", device="cpu")


def _metrics(cat: str, model: str, nlls: list[float]) -> dict[str, object]:
    stats = nll_statistics(nlls)
    return {
        "catalogue": cat,
        "model": model,
        **stats,
        "n_test": 84,
        "nfe_mean": 100.0,
        "normalization_max_error": 0.001,
        "per_seed": [
            {"seed": i, "test_nll": v, "nfe": 100, "train_steps": 10, "train_seconds": 1.0}
            for i, v in enumerate(nlls)
        ],
        "loss_history": {str(i): [[10, 1.0]] for i in range(len(nlls))},
    }


def test_summary_schema_and_table(tmp_path: Path) -> None:
    nlls = {"rsgm": [-0.2, -0.1, -0.15, -0.3, -0.25], "ambient_rb": [0.1, 0.2, 0.0, 0.1, 0.3]}
    for model, values in nlls.items():
        path = tmp_path / "earthquake" / f"{model}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_metrics("earthquake", model, values)))
    summary = build_summary(tmp_path, ["earthquake"], list(nlls), [0, 1, 2, 3, 4], "rsgm")
    assert set(summary) == {"protocol", "seeds", "units", "weights", "results"}
    entry = summary["results"]["earthquake"]["rsgm"]
    assert entry["mean"] == pytest.approx(np.mean(nlls["rsgm"]))
    assert entry["ci95"] == pytest.approx(2.776 * np.std(nlls["rsgm"], ddof=1) / math.sqrt(5))
    assert [r["test_nll"] for r in entry["per_seed"]] == nlls["rsgm"]
    assert "loss_history" not in entry
    table = format_nll_table(summary)
    assert "RSGM (published)" in table and "-0.19" in table and f"{entry['mean']:+.3f}" in table
    with raises_naming(FileNotFoundError, "ambient_raw.json", "evaluate@earthquake-ambient_raw"):
        build_summary(tmp_path, ["earthquake"], ["ambient_raw"], [0], "rsgm")


@pytest.mark.usefixtures("prefect_harness")
def test_summarize_stage_missing_metrics_is_exit_1_with_the_stage_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stages import summarize

    params = {
        "ingest": {"catalogues": {"earthquake": {}}},
        "split": {"protocol": "rsgm"},
        "train": {"seeds": [0, 1]},
        "evaluate": {"models": ["rsgm"]},
    }
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    argv = ["--params", str(tmp_path / "params.yaml"), "--metrics-dir", str(tmp_path / "m")]
    argv += ["--timings-dir", str(tmp_path / "t"), "--out", str(tmp_path / "summary.json")]
    assert summarize.main(argv) == 1
    err = capsys.readouterr().err
    assert "summarize: error: " in err and "run evaluate@earthquake-rsgm" in err
    assert not (tmp_path / "summary.json").exists()

    path = tmp_path / "m" / "earthquake" / "rsgm.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_metrics("earthquake", "rsgm", [-0.2, -0.1])))
    timings = tmp_path / "t" / "earthquake" / "rsgm.json"
    timings.parent.mkdir(parents=True)
    per_seed = [
        {"seed": s, "steps": 10, "resumed_from": 0, "train_seconds": 7.0 + s} for s in (0, 1)
    ]
    timings.write_text(json.dumps({"per_seed": per_seed}))
    assert summarize.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    # Training seconds come from the timings file, not the (deterministic) metrics.
    assert [r["train_seconds"] for r in summary["results"]["earthquake"]["rsgm"]["per_seed"]] == [
        7.0,
        8.0,
    ]
    assert summary["results"]["earthquake"]["rsgm"]["mean"] == pytest.approx(-0.15)
