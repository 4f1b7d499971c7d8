"""Tests for pipeline.report.nll_table: best entries and the Markdown table."""

from __future__ import annotations

from report_helpers import _summary

from pipeline.report.nll_table import build_nll_table, nll_table_markdown


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
