"""The report: the test-NLL table beside the published one, loss curves, maps and version diffs.

Everything here takes plain dicts, numbers and file paths (never a model). One concept per
module:

* :mod:`~pipeline.report.summary`: the summary metrics' schema, checks and seed statistics;
* :mod:`~pipeline.report.nll_table`: the test-NLL table beside the published rows;
* :mod:`~pipeline.report.loss_curves`: training-loss figures;
* :mod:`~pipeline.report.versions`: two summaries compared (differences, p-values);
* :mod:`~pipeline.report.revisions`: a summary read at a git/DVC revision (``geosgm compare``);
* :mod:`~pipeline.report.document`: block types and their Markdown and self-contained HTML;
* :mod:`~pipeline.report.sections`: the report's sections as blocks;
* :mod:`~pipeline.report.build`: :func:`build_report`, which writes ``report.md`` and
  ``report.html``.
"""

from pipeline.report.build import ReportPaths, build_report
from pipeline.report.loss_curves import draw_loss_curves
from pipeline.report.nll_table import NllCell, NllRow, NllTable, build_nll_table, nll_table_markdown
from pipeline.report.revisions import compare_revisions, read_summary_at_revision
from pipeline.report.sections import VOLCANO_DISTINCT_POINTS, VOLCANO_ROWS
from pipeline.report.summary import (
    DEFAULT_SUMMARY_PATH,
    seed_mean,
    validate_summary,
)
from pipeline.report.versions import (
    PreviousVersion,
    VersionRow,
    compare_versions,
    format_version_rows,
)

__all__ = [
    "DEFAULT_SUMMARY_PATH",
    "VOLCANO_DISTINCT_POINTS",
    "VOLCANO_ROWS",
    "NllCell",
    "NllRow",
    "NllTable",
    "PreviousVersion",
    "ReportPaths",
    "VersionRow",
    "build_nll_table",
    "build_report",
    "compare_revisions",
    "compare_versions",
    "draw_loss_curves",
    "format_version_rows",
    "nll_table_markdown",
    "read_summary_at_revision",
    "seed_mean",
    "validate_summary",
]
