"""Tests for pipeline.reporting: NLL table, self-contained HTML report and version comparison."""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.reporting import (
    PUBLISHED_NLL,
    PreviousVersion,
    build_nll_table,
    build_report,
    compare_revisions,
    compare_versions,
    draw_loss_curves,
    format_version_rows,
    nll_table_markdown,
    read_summary_at_revision,
    seed_statistics,
    validate_summary,
)

T_975_4 = 2.7764451051977987  # Student t quantile 0.975 with 4 degrees of freedom

# per-seed test NLLs of the fixture (catalogue -> model -> 5 values)
_TEST_NLL = {
    "volcano": {
        "rsgm": [-8.1, -8.4, -7.9, -8.3, -8.0],
        "ambient_rb": [-3.0, -3.2, -2.9, -3.1, -3.3],
    },
    "earthquake": {
        "rsgm": [0.10, 0.05, 0.12, 0.08, 0.11],
        "ambient_rb": [0.2, 0.25, 0.22, 0.3, 0.18],
    },
}


def _entry(values: list[float], n_test: int = 83, steps: int = 10_000) -> dict[str, Any]:
    arr = np.asarray(values)
    std = float(arr.std(ddof=1))
    return {
        "mean": float(arr.mean()),
        "std": std,
        "ci95": T_975_4 * std / math.sqrt(5),
        "n_test": n_test,
        "per_seed": [
            {
                "seed": s,
                "test_nll": float(v),
                "val_nll": float(v) + 0.01,
                "nfe": 98 + s,
                "train_steps": steps,
                "train_seconds": 120.0 + s,
                "normalization": 1.0 - 0.001 * s,
            }
            for s, v in enumerate(values)
        ],
    }


def _summary(shift: float = 0.0, steps: int = 10_000) -> dict[str, Any]:
    return {
        "protocol": "published splits, seeds 0-4",
        "seeds": [0, 1, 2, 3, 4],
        "units": "nats per point",
        "results": {
            cat: {m: _entry([v + shift for v in vals], steps=steps) for m, vals in models.items()}
            for cat, models in _TEST_NLL.items()
        },
    }


class _Collector(HTMLParser):
    """Collect tags with attributes, and the text of every <td>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._td: dict[str, str | None] | None = None
        self._text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._td, self._text = dict(attrs), []
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._td is not None:
            self.cells.append((self._td, "".join(self._text)))
            self._td = None
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._td is not None:
            self._text.append(data)
        if self._in_style:
            self.styles.append(data)


def _png(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=20)
    plt.close(fig)
    return path


def test_seed_statistics_matches_t_interval() -> None:
    mean, std, ci95 = seed_statistics([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert math.isclose(std, math.sqrt(2.5), rel_tol=1e-15)
    assert math.isclose(ci95, T_975_4 * math.sqrt(2.5) / math.sqrt(5.0), rel_tol=1e-12)
    assert math.isnan(seed_statistics([1.0])[1])
    with pytest.raises(ValueError, match="non-empty"):
        seed_statistics([])


def test_validate_summary_names_the_problem() -> None:
    bad = _summary()
    del bad["results"]["volcano"]["rsgm"]["per_seed"][2]["test_nll"]
    with pytest.raises(ValueError, match=r"results\['volcano'\]\['rsgm'\]\['per_seed'\]\[2\]"):
        validate_summary(bad)
    bad = _summary()
    bad["results"]["volcano"]["rsgm"]["per_seed"][0]["nfe"] = "many"
    with pytest.raises(ValueError, match="'nfe'\\] must be a number"):
        validate_summary(bad)
    with pytest.raises(ValueError, match="missing top-level key 'seeds'"):
        validate_summary({"protocol": "p", "units": "u", "results": {}})


def test_nll_table_marks_best_of_column_and_best_of_run() -> None:
    table = build_nll_table(_summary())
    assert table.catalogues == ["volcano", "earthquake", "flood", "fire"]
    rows = {r.method: r for r in table.rows}
    # volcano: our rsgm mean -8.14 beats the best published -7.93
    assert rows["rsgm"].cells["volcano"].best and rows["rsgm"].cells["volcano"].best_of_run
    assert not rows["Riemannian flow matching (Chen & Lipman 2024)"].cells["volcano"].best
    # earthquake: the published bound row (-0.40) is best; our best is rsgm (0.092)
    assert rows["Riemannian diffusion (Huang et al. 2022, a bound)"].cells["earthquake"].best
    assert rows["Riemannian diffusion (Huang et al. 2022, a bound)"].is_bound
    assert rows["rsgm"].cells["earthquake"].best_of_run
    assert not rows["rsgm"].cells["earthquake"].best
    assert not rows["ambient_rb"].cells["earthquake"].best_of_run
    assert sum(c.best for r in table.rows for c in r.cells.values()) == 4
    assert "flood" not in rows["rsgm"].cells
    md = nll_table_markdown(_summary())
    assert "**-8.140 ± 0.207 (±0.257)★◆**" in md
    assert "| Riemannian flow matching (Chen & Lipman 2024) | published | -7.93 (±1.67)" in md


def test_draw_loss_curves_writes_png(tmp_path: Path) -> None:
    hist = {
        m: {
            str(s): [[k * 10, 2.0 * math.exp(-k / 30) + 0.01 * s] for k in range(100)]
            for s in range(5)
        }
        for m in ("rsgm", "ambient_rb")
    }
    out = draw_loss_curves(hist, "volcano", tmp_path / "loss" / "volcano.png", smooth_window=5)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"\[\[step, loss\]"):
        draw_loss_curves({"m": {"0": [1.0, 2.0]}}, "x", tmp_path / "bad.png")


def test_report_html_is_self_contained_and_numbers_match_json(tmp_path: Path) -> None:
    summary = _summary()
    json_path = tmp_path / "reports" / "metrics" / "summary.json"
    json_path.parent.mkdir(parents=True)
    json_path.write_text(json.dumps(summary))
    reloaded = json.loads(json_path.read_text())
    maps = {
        cat: {m: _png(tmp_path / "reports" / "maps" / cat / f"{m}.png") for m in models}
        for cat, models in _TEST_NLL.items()
    }
    loss = {cat: _png(tmp_path / "reports" / "figures" / f"loss_{cat}.png") for cat in _TEST_NLL}
    geometry = {
        "rb_variance": {
            "sphere": {"raw_var": 120.5, "rb_var": 1.25},
            "rows": [{"sigma": 0.1, "err": 0.02}],
        }
    }
    previous = PreviousVersion("HEAD", _summary(shift=0.05))
    paths = build_report(
        reloaded,
        tmp_path / "reports",
        map_pngs=maps,
        loss_pngs=loss,
        geometry=geometry,
        previous=previous,
    )
    text = paths.html.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)

    # no external resources: no script, no stylesheet link, every image a data URI
    tags = {t for t, _ in parser.tags}
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert re.search(r"https?://|//[a-z0-9]", text, flags=re.IGNORECASE) is None
    css = "".join(parser.styles)
    assert "url(" not in css and "@import" not in css
    imgs = [a for t, a in parser.tags if t == "img"]
    assert len(imgs) == 4 + 2
    for attrs in imgs:
        assert (attrs.get("src") or "").startswith("data:image/png;base64,")
    for t, attrs in parser.tags:
        for key in ("src", "href", "srcset", "data", "poster", "action"):
            value = attrs.get(key)
            if value is not None and t != "img":
                assert value.startswith("#"), (t, key, value)
    embedded = {base64.b64decode((a["src"] or "").split(",", 1)[1]) for a in imgs}
    assert maps["volcano"]["rsgm"].read_bytes() in embedded

    # every number of this run in the HTML equals the metrics JSON
    ours = [(a, txt) for a, txt in parser.cells if a.get("data-source") == "this run"]
    assert len(ours) == 4
    for attrs, txt in ours:
        entry = summary["results"][attrs["data-catalogue"]][attrs["data-method"]]
        assert float(attrs["data-mean"] or "nan") == entry["mean"]
        assert float(attrs["data-std"] or "nan") == entry["std"]
        assert float(attrs["data-ci95"] or "nan") == entry["ci95"]
        expected = f"{entry['mean']:.3f} ± {entry['std']:.3f} (±{entry['ci95']:.3f})"
        assert txt.startswith(expected), (txt, expected)
    published = [(a, txt) for a, txt in parser.cells if a.get("data-source") == "published"]
    assert len(published) == 4 * len(PUBLISHED_NLL) - 0
    for attrs, txt in published:
        mean, ci = PUBLISHED_NLL[attrs["data-method"] or ""][attrs["data-catalogue"] or ""]
        assert float(attrs["data-mean"] or "nan") == mean
        assert txt.startswith(f"{mean:.2f}")
        if ci is not None:
            assert float(attrs["data-ci95"] or "nan") == ci
    best = [a for t, a in parser.tags if t == "td" and "best" in (a.get("class") or "")]
    assert {(a["data-method"], a["data-catalogue"]) for a in best if "data-mean" in a} == {
        ("rsgm", "volcano"),
        ("Riemannian diffusion (Huang et al. 2022, a bound)", "earthquake"),
        ("Riemannian flow matching (Chen & Lipman 2024)", "flood"),
        ("Riemannian flow matching (Chen & Lipman 2024)", "fire"),
    }

    # versions: this run is 0.05 nats lower than HEAD everywhere
    diffs = [a for a, _ in parser.cells if a.get("data-metric") == "test_nll_mean"]
    assert len(diffs) == 4
    for attrs in diffs:
        assert math.isclose(float(attrs["data-diff"] or "nan"), -0.05, abs_tol=1e-12)

    md = paths.markdown.read_text(encoding="utf-8")
    for cat, models in summary["results"].items():
        for m, e in models.items():
            assert f"{e['mean']:.3f} ± {e['std']:.3f} (±{e['ci95']:.3f})" in md
            assert f"](maps/{cat}/{m}.png)" in md
    assert "267 distinct" in md and "a bound" in md and "600,000 steps" in md
    assert "10,000 steps" in md
    assert "raw_var" in md and "sphere.rb_var" in md


def test_report_without_previous_version_says_so(tmp_path: Path) -> None:
    paths = build_report(
        _summary(), tmp_path, previous=PreviousVersion("HEAD", None, "no summary.json at HEAD")
    )
    md = paths.markdown.read_text(encoding="utf-8")
    assert "No previous metrics at `HEAD` (no summary.json at HEAD)" in md
    with pytest.raises(FileNotFoundError, match="missing.png"):
        build_report(_summary(), tmp_path, loss_pngs={"volcano": tmp_path / "missing.png"})


def test_compare_versions_differences_direction_and_paired_p_value() -> None:
    a = _summary()
    b = copy.deepcopy(a)
    deltas = [-0.1, -0.2, -0.1, -0.2, -0.15]
    vals = [v + d for v, d in zip(_TEST_NLL["volcano"]["rsgm"], deltas, strict=True)]
    b["results"]["volcano"]["rsgm"] = _entry(vals, steps=20_000)
    b["results"]["earthquake"]["ambient_rb"] = _entry(
        [v + 0.3 for v in _TEST_NLL["earthquake"]["ambient_rb"]]
    )
    del b["results"]["earthquake"]["rsgm"]
    b["results"]["fire"] = {"rsgm": _entry([-1.0, -1.1, -1.2, -1.0, -1.1])}
    rows = compare_versions(a, b)
    by = {(r.catalogue, r.model, r.metric): r for r in rows}

    r = by[("volcano", "rsgm", "test_nll_mean")]
    assert math.isclose(r.diff or 0.0, -0.15, abs_tol=1e-12)
    assert r.better == "B" and r.note == "paired t-test"
    # paired differences have mean -0.15 and sample std 0.05: t = -0.15 / (0.05 / sqrt 5)
    from scipy import stats

    t_stat = 0.15 / (0.05 / math.sqrt(5.0))
    assert math.isclose(r.p_value or 0.0, 2.0 * stats.t.sf(t_stat, 4), rel_tol=1e-9)
    assert by[("volcano", "rsgm", "train_steps_mean")].diff == 10_000
    assert by[("volcano", "rsgm", "train_steps_mean")].better == "—"
    assert by[("volcano", "ambient_rb", "test_nll_mean")].better == "tie"
    eq = by[("earthquake", "ambient_rb", "test_nll_mean")]
    assert math.isclose(eq.diff or 0.0, 0.3, abs_tol=1e-12) and eq.better == "A"
    assert eq.p_value == 0.0  # the same shift on every seed: certain, not a t-test NaN
    assert by[("earthquake", "rsgm", "test_nll_mean")].note == "removed in B"
    assert by[("fire", "rsgm", "test_nll_mean")].note == "added in B"
    assert [r.catalogue for r in rows][0] == "volcano"

    text = format_version_rows(rows, "v1", "v2")
    assert "-0.1500" in text and "+0.3000" in text and "+10000" in text
    assert "v2 is better on 1 of 3" in text
    md = format_version_rows(rows, "v1", "v2", markdown=True)
    assert md.startswith("| catalogue | model | metric | v1 | v2 |")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-C",
            str(repo),
            *args,
        ],
        check=True,
        capture_output=True,
    )


def test_compare_revisions_reads_two_commits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    path = repo / "reports" / "metrics" / "summary.json"
    path.parent.mkdir(parents=True)
    _git(repo, "init", "-q")
    path.write_text(json.dumps(_summary()))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    path.write_text(json.dumps(_summary(shift=-0.25, steps=12_000)))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v2")
    path.write_text(json.dumps(_summary(shift=-0.5)))  # uncommitted workspace version

    old = read_summary_at_revision(repo, "HEAD~1")
    assert (
        old["results"]["volcano"]["rsgm"]["mean"]
        == _summary()["results"]["volcano"]["rsgm"]["mean"]
    )
    rows = compare_versions(old, read_summary_at_revision(repo, "HEAD"))
    nll = [r for r in rows if r.metric == "test_nll_mean"]
    assert len(nll) == 4
    assert all(math.isclose(r.diff or 0.0, -0.25, abs_tol=1e-12) and r.better == "B" for r in nll)

    text = compare_revisions(repo, "HEAD~1", "HEAD")
    assert "A = HEAD~1, B = HEAD" in text
    nll_lines = [ln for ln in text.splitlines() if " test_nll_mean " in ln]
    assert len(nll_lines) == 4 and all("-0.2500" in ln and "HEAD " in ln for ln in nll_lines)
    assert "+2000" in text
    assert "HEAD is better on 4 of 4" in text
    ws = compare_revisions(repo, "HEAD", "workspace")
    assert sum("-0.2500" in ln for ln in ws.splitlines() if " test_nll_mean " in ln) == 4
    with pytest.raises(FileNotFoundError, match="HEAD~5"):
        read_summary_at_revision(repo, "HEAD~5")


def test_missing_summary_at_a_dvc_revision_is_a_clear_error(tmp_path: Path) -> None:
    """A revision before the first metrics commit: FileNotFoundError, and exit code 1."""
    import sys

    from pipeline.cli import main as cli_main

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "no metrics yet")
    path = repo / "reports" / "metrics" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_summary()))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    with pytest.raises(FileNotFoundError, match="HEAD~1"):
        read_summary_at_revision(repo, "HEAD~1")
    assert cli_main(["--repo", str(repo), "compare", "HEAD~1", "HEAD"]) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_report_stage_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stages.report on a fixture tree: loss curves drawn, previous version read from git."""
    from stages.report import main

    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("report:\n  title: fixture report\n  compare_rev: HEAD\n")
    summary_path = Path("reports/summary.json")
    summary_path.parent.mkdir(parents=True)
    _git(tmp_path, "init", "-q")
    summary_path.write_text(json.dumps(_summary(shift=0.1)))
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "previous version")
    summary = _summary()
    summary_path.write_text(json.dumps(summary))
    for cat, models in summary["results"].items():
        for model, entry in models.items():
            history = {str(s): [[k, 1.0 / (k + 1)] for k in range(0, 200, 10)] for s in range(5)}
            per_model = {**entry, "loss_history": history}
            Path(f"reports/metrics/{cat}").mkdir(parents=True, exist_ok=True)
            Path(f"reports/metrics/{cat}/{model}.json").write_text(json.dumps(per_model))
            _png(Path(f"reports/maps/{cat}/{model}.png"))

    assert main([]) == 0
    html_text = Path("reports/report.html").read_text(encoding="utf-8")
    assert "<title>fixture report</title>" in html_text
    assert sorted(p.name for p in Path("reports/figures/loss").iterdir()) == [
        "earthquake.png",
        "volcano.png",
    ]
    md = Path("reports/report.md").read_text(encoding="utf-8")
    assert "](figures/loss/volcano.png)" in md
    assert "against `HEAD (" in md  # the committed summary is the previous version
    assert md.count("| -0.1000 |") == 8  # test and val NLL are 0.1 lower than at HEAD

    Path("reports/maps/volcano/rsgm.png").unlink()
    assert main([]) == 1  # a missing map fails the stage with a message

    summary_path.write_text('{"results": {"volcano"')  # a corrupt summary: one line, exit 1
    assert main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("report: error: reports/summary.json is not valid JSON"), err
    assert "rerun `dvc repro`" in err[-1]


def test_optional_per_seed_values_may_be_absent(tmp_path: Path) -> None:
    """Without val NLL / normalisation on some seeds the report shows what is there."""
    a = _summary()
    b = _summary(shift=-0.1)
    for s in (a, b):
        for models in s["results"].values():
            for entry in models.values():
                for row in entry["per_seed"]:
                    del row["val_nll"]
                    if row["seed"] > 0:
                        del row["normalization"]
    rows = compare_versions(a, b)
    assert not any(r.metric == "val_nll_mean" for r in rows)
    paths = build_report(b, tmp_path, previous=PreviousVersion("v1", a))
    md = paths.markdown.read_text(encoding="utf-8")
    assert "| 1.0000–1.0000 (1 seed) | — |" in md
