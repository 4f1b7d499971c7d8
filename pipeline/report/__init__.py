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

# No re-exports: importing a submodule runs this file, and every name re-exported here
# would put its module in the DVC code deps of each stage that imports any submodule.
