"""`geosgm density` and `geosgm sample` on a project with a tiny trained model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline import cli
from pipeline.checkpoints import write_model_card
from pipeline.cli import commands
from pipeline.config.train import TrainConfig
from pipeline.gitio import git_show
from pipeline.training import train
from pipeline.variants import build_manifold, build_schedule, get_variant

CONFIG = {
    "manifold": {"name": "sphere", "dim": 2},
    "schedule": {"kind": "linear", "beta_0": 0.001, "beta_1": 5.0, "T": 1.0},
    "network": {"hidden": 16, "depth": 2, "activation": "sine"},
    "loss": {"t_sampler": "log_uniform", "eps": 0.001},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("project")
    (repo / "dvc.yaml").write_text("stages: {}\n")
    params = {
        "ingest": {
            "catalogues": {"tiny": {"file": "tiny.csv", "lat_col": "lat", "lon_col": "lon"}}
        },
        "evaluate": {"rtol": 1e-3, "atol": 1e-3},
        "maps": {"sample_steps": 20},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    manifold = build_manifold(CONFIG["manifold"])
    schedule = build_schedule(CONFIG["schedule"])
    data = manifold.random_uniform(
        128, dtype=torch.float32, generator=torch.Generator().manual_seed(1)
    )
    for seed in (0, 1):
        torch.manual_seed(seed)
        out = repo / "data" / "models" / "tiny" / "rsgm" / f"seed{seed}"
        write_model_card(out, "rsgm", CONFIG)
        net = get_variant("rsgm").network(CONFIG, manifold)
        loss_fn = get_variant("rsgm").build_loss(CONFIG, manifold, schedule)
        cfg = TrainConfig(steps=5, batch_size=32, checkpoint_every=5, log_every=5, device="cpu")
        train(net, loss_fn, data, cfg, out, progress=False)
    return repo


def _run(project: Path, *argv: str) -> int:
    return cli.main(["--repo", str(project), *argv])


def test_density_table_csv_and_file(
    project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _run(project, "density", "tiny", "rsgm", "10", "20", "-33.5", "200") == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("tiny/rsgm, seeds [0, 1]: log-density in nats per steradian")
    assert "6371.0088 km" in shown[0] and len(shown) == 4
    assert shown[3].split()[:2] == ["-33.5000", "-160.0000"]

    assert _run(project, "density", "tiny", "rsgm", "10", "20", "--format", "csv") == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if not r.startswith("#")]
    assert rows[0].split(",")[:5] == [
        "lat",
        "lon",
        "log_density",
        "log_density_sd",
        "density_per_km2",
    ]
    values = [float(v) for v in rows[1].split(",")]
    # a barely trained model is near uniform: log p ≈ -log 4π, and the two seeds differ
    assert abs(values[2] + np.log(4 * np.pi)) < 0.5 and values[3] > 0
    assert values[4] == pytest.approx(np.exp(values[2]) / 6371.0088**2, rel=1e-5)
    assert np.mean(values[5:7]) == pytest.approx(values[2], abs=1e-6)

    points = tmp_path / "sites.csv"
    points.write_text("site,lat,lon\na,0,0\nb,45,90\nc,-60,300\n")
    out = tmp_path / "density.csv"
    assert (
        _run(
            project,
            "density",
            "tiny",
            "rsgm",
            "--points",
            str(points),
            "--csv",
            str(out),
            "--seeds",
            "1",
        )
        == 0
    )
    assert "wrote 3 points" in capsys.readouterr().out
    written = [r for r in out.read_text().splitlines() if not r.startswith("#")]
    assert len(written) == 4 and written[0].endswith("log_density_seed1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["density", "tiny", "rsgm", "95", "0"], "point 1: latitude 95 is outside [-90, 90]"),
        (["density", "tiny", "rsgm", "ten", "0"], "point 1: latitude 'ten' is not a number"),
        (["density", "tiny", "rsgm2", "1", "0"], "unknown model 'rsgm2'"),
        (["density", "quakes", "rsgm", "1", "0"], "unknown catalogue 'quakes' (catalogues: tiny)"),
        (["density", "tiny", "ambient_rb", "1", "0"], "dvc repro train@tiny-ambient_rb"),
        (["density", "tiny", "rsgm", "1", "0", "--seeds", "0,7"], "seed(s) [7] not trained"),
        (["density", "tiny", "rsgm", "--points", "nowhere.csv"], "nowhere.csv: no such file"),
        (["sample", "tiny", "rsgm", "-n", "5", "--out", "x.xlsx"], "unsupported output format"),
        (["sample", "tiny", "rsgm", "-n", "0", "--out", "x.csv"], "-n must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert _run(project, *argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert err.startswith(f"geosgm {argv[0]}: ")


def test_sample_is_reproducible_and_writes_geoparquet(
    project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert _run(project, "sample", "tiny", "rsgm", "-n", "40", "--seed", "3", "--out", str(a)) == 0
    assert _run(project, "sample", "tiny", "rsgm", "-n", "40", "--seed", "3", "--out", str(b)) == 0
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text().splitlines()
    assert lines[0].startswith("# geosgm sample: 40 events from tiny/rsgm, seeds [0, 1]")
    assert "reverse geodesic random walk with 20 steps" in lines[0]
    assert lines[1] == "lat,lon,model_seed" and len(lines) == 42
    import geopandas as gpd

    pq = tmp_path / "c.parquet"
    assert _run(project, "sample", "tiny", "rsgm", "-n", "40", "--seed", "3", "--out", str(pq)) == 0
    frame = gpd.read_parquet(pq)
    assert frame.crs.to_epsg() == 4326 and len(frame) == 40
    first = [float(v) for v in lines[2].split(",")[:2]]
    assert frame["lat"].iloc[0] == pytest.approx(first[0], abs=1e-6)
    assert "wrote 40 events" in capsys.readouterr().out


def test_the_sample_header_names_the_sampler_that_drew() -> None:
    """kde draws exactly (no walk, whatever --steps says); a mixture says both."""
    from types import SimpleNamespace

    from pipeline.query.synthetic import sampler_description

    exact = SimpleNamespace(exact_sample=lambda n, g: None, members=())
    walk = SimpleNamespace(exact_sample=None, members=())
    mixture = SimpleNamespace(exact_sample=None, members=((0.5, exact), (0.5, walk)))
    assert sampler_description({0: exact, 1: exact}, 300) == "exact draws (the model's own sampler)"
    assert sampler_description({0: walk}, 30) == "reverse geodesic random walk with 30 steps"
    assert "exact draws, or a reverse geodesic random walk with 30 steps" in sampler_description(
        {0: mixture},
        30,
    )


def test_run_with_evaluate_targets_prints_their_nll(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "reports" / "metrics" / "volcano"
    metrics.mkdir(parents=True)
    (metrics / "rsgm.json").write_text(
        '{"mean": -3.25, "std": 0.125, "ci95": 1.123, "n_test": 84, "per_seed": [{}, {}]}'
    )
    targets = ["evaluate@volcano-rsgm", "maps@volcano-rsgm"]
    assert commands._print_target_metrics(tmp_path, targets) == 0
    assert capsys.readouterr().out == (
        "volcano/rsgm: test NLL -3.250 ± 1.123 (95% CI) nats (2 seed(s), 84 test events; "
        "uniform = 2.531)\n"
    )
    (metrics / "rsgm.json").write_text(
        '{"mean": -3.25, "std": 0.0, "n_test": 84, "per_seed": [{}]}'
    )
    commands._print_target_metrics(tmp_path, ["evaluate@volcano-rsgm"])
    assert capsys.readouterr().out.startswith("volcano/rsgm: test NLL -3.250 nats (1 seed(s)")


def test_profile_applies_onto_params_atomically(tmp_path: Path) -> None:
    repo = tmp_path / "p"
    (repo / "profiles").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text("# mine\ntrain:\n  seeds: [0, 1, 2]\n  torch_threads: 1\n")
    (repo / "profiles" / "quick.yaml").write_text("train:\n  seeds: [0]\n")
    assert cli.main(["--repo", str(repo), "profile", "quick"]) == 0
    text = (repo / "params.yaml").read_text()
    assert text == "# mine\ntrain:\n  seeds: [0]\n  torch_threads: 1\n"
    assert yaml.safe_load(text) == {"train": {"seeds": [0], "torch_threads": 1}}
    assert sorted(p.name for p in repo.iterdir()) == ["dvc.yaml", "params.yaml", "profiles"]
    assert cli.main(["--repo", str(repo), "profile", "nope"]) == 2  # a usage error


# --- errors of metrics / compare / profile, and a closed stdout ------------------------------

ROOT = Path(__file__).resolve().parents[2]

SUMMARY = {
    "protocol": "hash",
    "seeds": [0],
    "units": "nats per point",
    "results": {
        "volcano": {
            "rsgm": {
                "mean": -1.5,
                "std": 0.0,
                "ci95": 0.0,
                "n_test": 10,
                "per_seed": [{"seed": 0, "test_nll": -1.5}],
            }
        }
    },
}


def _summary_project(root: Path, text: str | None = None) -> Path:
    """A project with reports/summary.json (``SUMMARY``, or ``text`` as written)."""
    repo = root / "proj"
    (repo / "reports").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    summary = json.dumps(SUMMARY) if text is None else text
    (repo / "reports" / "summary.json").write_text(summary, encoding="utf-8")
    return repo


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(repo), *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("text", ['{"protocol": ', "[]", "{}", "\xff\xfe"])
@pytest.mark.parametrize("command", [["metrics"], ["compare", "workspace", "workspace"]])
def test_a_corrupt_summary_is_one_line_naming_the_file_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, command: list[str]
) -> None:
    repo = _summary_project(tmp_path, text)
    assert cli.main(["--repo", str(repo), *command]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"geosgm {command[0]}: ") and captured.err.count("\n") == 1
    assert "summary.json" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_metrics_of_a_good_summary_still_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--repo", str(_summary_project(tmp_path)), "metrics"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("test NLL (nats)") and "rsgm" in out


def test_a_closed_stdout_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    """`geosgm compare A B | head -1`: the reader is gone before the command writes."""
    repo = _summary_project(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to write_end now fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "--repo", str(repo)]
            + ["compare", "workspace", "workspace"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert b"BrokenPipeError" not in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "revs", [["--output=LEAK", "HEAD"], ["HEAD", "-p"], ["--", "HEAD"]], ids=str
)
def test_compare_rejects_a_revision_beginning_with_dash_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], revs: list[str]
) -> None:
    repo = _summary_project(tmp_path)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    revs = [r.replace("LEAK", str(tmp_path / "leak")) for r in revs]
    before = sorted(tmp_path.rglob("*"))
    assert cli.main(["--repo", str(repo), "compare", "--", *revs]) == 2
    err = capsys.readouterr().err
    bad = next(r for r in revs if r.startswith("-"))
    assert err.startswith("geosgm compare: ") and err.count("\n") == 1 and bad in err
    assert sorted(tmp_path.rglob("*")) == before  # git never wrote an --output file


def test_git_show_never_reads_a_revision_as_an_option(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f").write_text("x\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    assert git_show(repo, "HEAD", "f").stdout == b"x\n"
    shown = git_show(repo, f"--output={tmp_path / 'leak'}", "f")
    assert not shown.ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no leak:f written


def test_an_unknown_profile_is_a_usage_error_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "p"
    (repo / "profiles").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text("train:\n  seeds: [0]\n")
    for name in ("paper", "smoke"):
        (repo / "profiles" / f"{name}.yaml").write_text("train: {}\n")
    for name in ("nosuch", "../params"):
        assert cli.main(["--repo", str(repo), "profile", name]) == 2
        err = capsys.readouterr().err
        assert err.startswith("geosgm profile: ") and err.count("\n") == 1
        assert repr(name) in err and "paper, smoke" in err
    assert (repo / "params.yaml").read_text() == "train:\n  seeds: [0]\n"
