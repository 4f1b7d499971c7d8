"""End to end: ``dvc repro`` of the whole pipeline on the ``smoke`` profile in a temporary copy.

One tiny synthetic catalogue (split ``auto``, so hash: it has no published labels; 2 seeds)
goes through every stage: ingest, split, geometry, train_config, train, derive, evaluate,
ensemble, summarize, maps, report and the SO(3) benchmark. Then: a second ``dvc repro`` reruns
nothing and ``dvc status`` is clean; retraining a model to identical weights reruns nothing that
reads them; a second catalogue added as one ``ingest.catalogues`` entry (no split or train
entry) trains and evaluates without rerunning any stage of the first; and changing one
catalogue's training override makes only that catalogue's training stale. Every stage command
runs as a Prefect flow run on the local server. (One catalogue, not two, in the first repro:
the second arrives by the new-catalogue test, which saves about 20 stage runs.)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import deep_merge
from pipeline.flows.server import local_prefect_server

pytestmark = pytest.mark.process  # dvc repro of the whole pipeline

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ["dvc.yaml", "params.yaml", "profiles", "pipeline", "stages", ".dvcignore"]
DATA_COPY = ["data/published_splits", "data/naturalearth", "reports/benchmarks/bridge_steps.json"]
CATALOGUES = ("tiny_a",)  # the first repro; tiny_b arrives as a new catalogue


def _tiny_csv(path: Path, seed: int, n: int = 150) -> None:
    rng = np.random.default_rng(seed)
    lat = np.clip(rng.normal(20.0 * (seed + 1), 8.0, n), -89.0, 89.0)
    lon = ((rng.normal(-40.0 + 60.0 * seed, 15.0, n) + 180.0) % 360.0) - 180.0
    lines = ["# synthetic test catalogue", "lat,lon"]
    lines += [f"{a:.4f},{b:.4f}" for a, b in zip(lat, lon, strict=True)]
    path.write_text("\n".join(lines))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    for key, value in {
        "GIT_AUTHOR_NAME": "geosgm test",
        "GIT_AUTHOR_EMAIL": "test@geosgm.local",
        "GIT_COMMITTER_NAME": "geosgm test",
        "GIT_COMMITTER_EMAIL": "test@geosgm.local",
    }.items():
        env.setdefault(key, value)
    return env


# The opt-in Langevin model and Schrödinger bridge ride along, so a dvc repro trains, evaluates
# (and for the bridge maps) them and shows them in the summary and the report.
TRAINED = ("kde", "rsgm", "ambient_rb", "rsgm_langevin", "dsb")
EVALUATED = ("kde", "rsgm", "ambient_rb_corrected", "rsgm_langevin", "dsb")
ENSEMBLES = ("kde_rsgm",)  # fitted by ensemble@ on kde's and rsgm's stored scores
MAPPED = ("kde", "rsgm", "dsb")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    for name in COPY + DATA_COPY:
        src = ROOT / name
        dst = root / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    (root / "data/raw").mkdir(parents=True)
    for i, name in enumerate(CATALOGUES):
        _tiny_csv(root / "data/raw" / f"{name}.csv", seed=i)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params = deep_merge(params, yaml.safe_load((root / "profiles/smoke.yaml").read_text()))
    spec = {"lat_col": "lat", "lon_col": "lon", "skip_lines": "auto", "has_header": True}
    params["ingest"]["catalogues"] = {n: {"file": f"{n}.csv", **spec} for n in CATALOGUES}
    params["split"]["protocol"] = "auto"
    params["train"]["models"] = list(TRAINED)
    params["train"]["overrides"] = {}
    params["evaluate"]["models"] = list(EVALUATED)
    params["maps"]["models"] = list(MAPPED)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], root)
    _run([str(BIN / "dvc"), "init", "-q", "-f"], root)
    _run([str(BIN / "dvc"), "config", "core.analytics", "false"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "tiny project"], root)
    with local_prefect_server(root, home=root / ".prefect") as api_url:
        since = datetime.now(timezone.utc).isoformat()
        _run([str(BIN / "dvc"), "repro"], root)
        runs = _flow_runs(api_url, since)
    (root.parent / "flow_runs.json").write_text(json.dumps(runs))
    return root


def _flow_runs(api_url: str, since: str) -> list[list[str]]:
    """``[flow name, final state type]`` of every flow run the Prefect server recorded since then.

    (The server's database may hold runs of earlier sessions.)
    """
    import httpx

    flows = httpx.post(f"{api_url}/flows/filter", json={}, timeout=30).json()
    names = {f["id"]: f["name"] for f in flows}
    query = {"limit": 200, "flow_runs": {"start_time": {"after_": since}}}
    runs = httpx.post(f"{api_url}/flow_runs/filter", json=query, timeout=30).json()
    return sorted([names[r["flow_id"]], r["state_type"]] for r in runs)


def test_every_stage_ran_as_a_completed_flow_run(project: Path) -> None:
    runs = json.loads((project.parent / "flow_runs.json").read_text())
    expected = ["geometry", "summarize", "report", "so3_data"]
    expected += [f"so3-m4-{m}" for m in ("rsgm", "ambient_raw", "ambient_rb")]
    for cat in CATALOGUES:
        expected += [f"ingest-{cat}", f"split-{cat}"]
        expected += [f"maps-{cat}-{m}" for m in MAPPED]
        expected += [f"train-{cat}-{m}" for m in TRAINED]
        expected += [f"train-config-{cat}-{m}" for m in TRAINED]
        expected += [f"evaluate-{cat}-{m}" for m in EVALUATED]
        expected += [f"derive-{cat}-ambient_rb_corrected", f"ensemble-{cat}"]
    # One flow run per stage, each completed; the seeds are task runs inside them.
    assert runs == sorted([name, "COMPLETED"] for name in expected)


def test_repro_writes_every_artifact(project: Path) -> None:
    summary = json.loads((project / "reports/summary.json").read_text())
    assert set(summary["results"]) == set(CATALOGUES)
    for cat in CATALOGUES:
        assert set(summary["results"][cat]) == set(EVALUATED) | set(ENSEMBLES)
        for model, entry in summary["results"][cat].items():
            nlls = [r["test_nll"] for r in entry["per_seed"]]
            assert len(nlls) == 2 and all(math.isfinite(v) for v in nlls)
            # A barely trained model sits near its reference law: the uniform density's log 4π
            # for Brownian motion (the bridge's ODE too), below it for the Riemannian normal
            # fitted to the data.
            # Both protocols for every model: the far one keeps a share of the test events.
            assert set(entry["far"]) == {"0.1", "1"}
            assert all(0.0 <= r["far"]["0.1"]["share"] <= 1.0 for r in entry["per_seed"])
            if model in ("kde", "kde_rsgm"):
                # The kernels fit the clustered catalogue at once (and the ensemble holds them).
                assert entry["mean"] < math.log(4 * math.pi) - 1.0
            elif model == "rsgm_langevin":
                assert entry["mean"] < math.log(4 * math.pi)
            else:
                assert abs(entry["mean"] - math.log(4 * math.pi)) < 1.0
            assert entry["ci95"] == pytest.approx(12.706 * np.std(nlls, ddof=1) / math.sqrt(2))
        assert (project / f"data/processed/{cat}.nc").is_file()
        assert (project / f"data/models/{cat}/rsgm/seed1/ema.safetensors").is_file()
        for model in MAPPED:
            assert (project / f"reports/maps/{cat}/{model}.png").is_file()
        # The bridge's folder: its fields per IPF iteration beside a dsb model card.
        assert (project / f"data/models/{cat}/dsb/seed0/iter02/backward").is_dir()
    assert (project / "reports/report.html").is_file()
    report = (project / "reports/report.md").read_text(encoding="utf-8")
    assert "rsgm_langevin" in report and "## Langevin noising" in report
    assert (project / "reports/geometry/summary.json").is_file()
    # The SO(3) benchmark on the smoke profile: M = 4, 2 seeds, every model and the truth.
    so3 = json.loads((project / "reports/metrics/so3/m4.json").read_text())
    assert so3["seeds"] == [0, 1]
    assert set(so3["models"]) == {"rsgm", "ambient_raw", "ambient_rb", "ambient_rb_corrected"}
    for row in so3["models"].values():
        assert len(row["per_seed"]) == 2 and all(math.isfinite(v) for v in row["per_seed"])
        assert row["angle"]["mean"] == pytest.approx(row["frobenius"]["mean"] + math.log(8) / 2)
    assert (
        so3["models"]["ambient_rb_corrected"]["per_seed"] != so3["models"]["ambient_rb"]["per_seed"]
    )
    assert "## SO(3) benchmark" in report and "true density (same test points)" in report


def test_second_repro_reruns_nothing(project: Path) -> None:
    with local_prefect_server(project, home=project / ".prefect"):
        out = _run([str(BIN / "dvc"), "repro"], project).stdout
    ran = [line for line in out.splitlines() if line.startswith("Running stage")]
    assert ran == [], out
    status = json.loads(_run([str(BIN / "dvc"), "status", "--json"], project).stdout)
    assert status == {}, status


def test_identical_retrain_reruns_nothing_that_reads_the_weights(project: Path) -> None:
    """No wall-clock value in the model folder: a retrain from scratch hashes identically."""
    folder = project / "data/models/tiny_a/rsgm"
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    shutil.rmtree(folder)
    with local_prefect_server(project, home=project / ".prefect"):
        _run([str(BIN / "dvc"), "repro", "-s", "train@tiny_a-rsgm"], project)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    status = json.loads(_run([str(BIN / "dvc"), "status", "--json"], project).stdout)
    # Only the timings (cache: false) changed: the summary's training seconds.
    assert set(status) <= {"summarize"}, status


def _stale(project: Path) -> set[str]:
    """The stages ``dvc status`` calls stale."""
    return set(json.loads(_run([str(BIN / "dvc"), "status", "--json"], project).stdout))


def test_a_new_catalogue_is_one_entry_and_reruns_no_other_catalogue(project: Path) -> None:
    """``tiny_b`` added as one ``ingest.catalogues`` entry (no split or train entry).

    Only its own chain is reproduced (ingest, split, train_config, train, evaluate of rsgm):
    ``dvc status`` then shows what the entry staled, which is enough to see that no stage of
    ``tiny_a`` moved, without running every model on it.
    """
    _tiny_csv(project / "data/raw/tiny_b.csv", seed=1)
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["ingest"]["catalogues"]["tiny_b"] = {
        "file": "tiny_b.csv",
        "lat_col": "lat",
        "lon_col": "lon",
        "skip_lines": "auto",
        "has_header": True,
    }
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    stale = _stale(project)
    assert not any("tiny_a" in name for name in stale), sorted(stale)
    assert {"split@tiny_b", "train@tiny_b-rsgm", "evaluate@tiny_b-rsgm", "summarize"} <= stale
    with local_prefect_server(project, home=project / ".prefect"):
        out = _run([str(BIN / "dvc"), "repro", "evaluate@tiny_b-rsgm"], project).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {
        "ingest@tiny_b",
        "split@tiny_b",
        "train_config@tiny_b-rsgm",
        "train@tiny_b-rsgm",
        "evaluate@tiny_b-rsgm",
    }, sorted(ran)
    split = (project / "data/splits/tiny_b.csv").read_text().splitlines()
    assert split[0].startswith("event,seed") and len(split) == 151  # hash split, every event
    metrics = json.loads((project / "reports/metrics/tiny_b/rsgm.json").read_text())
    assert len(metrics["per_seed"]) == 2 and math.isfinite(metrics["mean"])


def test_catalogue_override_stales_only_that_catalogues_training(project: Path) -> None:
    """Runs last: it leaves the override in place (restoring it would rerun every
    ``train_config`` stage again, for nothing the test checks)."""
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    assert "tiny_b" in params["ingest"]["catalogues"], "runs after the new-catalogue test"
    # A rate no model kind has (rsgm and ambient_rb default to 1e-3), so every kind moves.
    params["train"]["overrides"] = {"tiny_a": {"optim": {"lr": 3.0e-4}}}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # The override is in every train_config stage's params; the resolved configs decide which
    # training is stale. tiny_b's trained chain (rsgm) stands for the other catalogue.
    targets = ["--glob", "train_config@tiny_a-*", "train_config@tiny_b-rsgm"]
    with local_prefect_server(project, home=project / ".prefect"):
        _run([str(BIN / "dvc"), "repro", "-s", *targets], project)
    stale = _stale(project)
    # kde takes no optim keys, so the override leaves its fit alone.
    assert {f"train@tiny_a-{m}" for m in TRAINED if m != "kde"} <= stale, sorted(stale)
    assert "train@tiny_a-kde" not in stale and "train@tiny_b-rsgm" not in stale, sorted(stale)
