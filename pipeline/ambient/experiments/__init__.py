"""The seed-002 experiments of the ``geometry`` stage (issue 4a-4d), one module each.

Each module holds one experiment, returning a plain JSON-serialisable dict, and its
``headline(result)``: the numbers the stage puts in ``reports/geometry/summary.json``.

* :mod:`.variance_collapse` (4a): :math:`E|T_\\sigma|^2` vs :math:`E|r_\\sigma(\\pi(X))|^2` on S².
* :mod:`.langevin_equilibria` (4b): equilibria of the true, RB and corrected-RB drifts on S^d.
* :mod:`.curvature_coefficients` (1, 4c): the operator :math:`\\tfrac12W_H - \\mathrm{Ric}^\\sharp`
  from the second fundamental form, and the coefficient measured from :math:`r_\\sigma` itself
  on the flat torus and on spheres.
* :mod:`.rb_regression` (4d): an MLP trained with and without Rao-Blackwellization.

:mod:`.fits` holds the log-log slope fit two of them share. Nothing is imported here, so a
user of one experiment depends on that experiment only.
"""
