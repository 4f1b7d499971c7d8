"""Tests for pipeline.report.build: the HTML report (images linked or embedded), its Markdown."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

from report_helpers import _TEST_NLL, _Collector, _png, _summary

from pipeline.published import PUBLISHED_NLL
from pipeline.report.build import build_report
from pipeline.report.document import Image, render_html
from pipeline.report.versions import PreviousVersion, compare_versions
from tests.errors import raises_naming


def test_report_html_links_its_images_and_numbers_match_json(tmp_path: Path) -> None:
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
    # 4 maps, 2 loss figures, and "At a glance" repeats each catalogue's best model's map
    best = {
        cat: min(entries, key=lambda m: entries[m]["mean"])
        for cat, entries in reloaded["results"].items()
    }
    glance = sum(1 for cat, model in best.items() if model in maps.get(cat, {}))
    assert glance >= 1
    assert len(imgs) == 4 + 2 + glance
    assert [a.get("alt") for a in imgs[:glance]] == [
        f"{cat} {model} density map" for cat, model in best.items() if model in maps.get(cat, {})
    ]
    # every image is linked by a relative path that resolves to the PNG beside the page
    for attrs in imgs:
        src = attrs.get("src") or ""
        assert not src.startswith(("/", "data:")) and (paths.html.parent / src).is_file(), src
    for t, attrs in parser.tags:
        for key in ("src", "href", "srcset", "data", "poster", "action"):
            value = attrs.get(key)
            if value is not None and t != "img":
                assert value.startswith("#"), (t, key, value)
    linked = {(paths.html.parent / (a["src"] or "")).resolve() for a in imgs}
    assert maps["volcano"]["rsgm"].resolve() in linked
    # the page is small: it holds the text, not the images
    assert len(text.encode()) < 100_000

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
    with raises_naming(FileNotFoundError, str(tmp_path / "missing.png"), "volcano"):
        build_report(_summary(), tmp_path, loss_pngs={"volcano": tmp_path / "missing.png"})


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


def test_render_html_embeds_images_without_a_folder_to_link_from(tmp_path: Path) -> None:
    png = _png(tmp_path / "a b.png")
    page = render_html([Image(png, "alt", "caption")], "t")
    src = re.search(r'<img src="([^"]+)"', page)
    assert src is not None and base64.b64decode(src.group(1).split(",", 1)[1]) == png.read_bytes()
    linked = render_html([Image(png, "alt", "caption")], "t", link_from=tmp_path)
    assert '<img src="a%20b.png"' in linked
    with raises_naming(ValueError, "PNG", "x.jpg"):
        render_html([Image(tmp_path / "x.jpg", "alt", "c")], "t", link_from=tmp_path)
