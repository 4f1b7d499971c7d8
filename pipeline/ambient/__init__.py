"""Ambient denoising score matching on embedded manifolds (seed 002).

Submodules (imported explicitly, nothing eagerly, so DVC stages depend only on what they use):
``targets`` (raw and Rao-Blackwellized targets), ``posterior`` (exact :math:`r_\\sigma` for vMF
priors by quadrature), ``curvature`` (:math:`\\tfrac12W_H - \\mathrm{Ric}^\\sharp` from the second
fundamental form), ``langevin`` (equilibria by quadrature and simulation), ``models`` (the three
ambient model variants, their losses and score fields), ``experiments`` and ``plots`` (the
``geometry`` stage).
"""
