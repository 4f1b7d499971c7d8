"""Image captions of the report read as sentences naming catalogue, model and content."""

from __future__ import annotations

import re
from pathlib import Path

from report_helpers import _TEST_NLL, _png, _summary

from pipeline.report.build import build_report
from pipeline.report.sections import change_caption, map_caption, model_title


def test_map_caption_names_catalogue_model_and_panels() -> None:
    text = map_caption("volcano", "ambient_rb")
    assert text.startswith(
        "The ambient score model, Rao-Blackwellized target (ambient_rb) on the volcano catalogue."
    )
    assert "test events" in text and "samples" in text and "spread" in text
    assert map_caption("fire", "kde", best=True).startswith(
        "Best model by test NLL here: adaptive kernel density (kde) on the fire catalogue."
    )
    assert model_title("new_model") == "new_model"  # unknown ids are shown as they are
    change = change_caption("flood", "rsgm", "HEAD~1")
    assert change.startswith("How the log-density of the Riemannian score-based model (rsgm)")
    assert "flood catalogue" in change and "HEAD~1" in change and change.endswith(".")


def test_every_image_caption_of_the_report_is_a_sentence(tmp_path: Path) -> None:
    maps = {
        cat: {m: _png(tmp_path / "reports" / "maps" / cat / f"{m}.png") for m in models}
        for cat, models in _TEST_NLL.items()
    }
    loss = {cat: _png(tmp_path / "reports" / "figures" / f"loss_{cat}.png") for cat in _TEST_NLL}
    md = build_report(
        _summary(), tmp_path / "reports", map_pngs=maps, loss_pngs=loss
    ).markdown.read_text(encoding="utf-8")
    captions = re.findall(r"!\[[^\]]*\]\([^)]*\)\n\n\*([^*]+)\*", md)
    assert len(captions) >= sum(len(m) for m in maps.values()) + len(loss)
    for caption in captions:
        assert caption[0].isupper() and caption.endswith("."), caption
        assert " / " not in caption, caption
        assert "catalogue" in caption, caption
    for cat, models in maps.items():
        for model in models:
            assert map_caption(cat, model) in captions
