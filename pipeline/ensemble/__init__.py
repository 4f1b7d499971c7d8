"""K seeds of one score network as one vectorised network: training and PF-ODE likelihood.

:class:`SeedEnsemble` stacks K models (``torch.func.stack_module_state`` + ``vmap``);
:class:`EnsembleDSMLoss` is the RSGM DSM loss with per-seed randomness; :func:`train_ensemble`
trains K seeds with per-seed generators, Adam state, EMA and checkpoint folders (the
single-seed trainer's files); :func:`ensemble_pf_ode_logp` solves the K seeds' PF-ODEs in one
adaptive solve whose step passes every seed's own error test.
"""

from pipeline.ensemble.likelihood import ensemble_pf_ode_logp
from pipeline.ensemble.loss import EnsembleDSMLoss
from pipeline.ensemble.stack import EnsembleField, SeedEnsemble
from pipeline.ensemble.trainer import EnsembleLossFn, train_ensemble

__all__ = [
    "EnsembleDSMLoss",
    "EnsembleField",
    "EnsembleLossFn",
    "SeedEnsemble",
    "ensemble_pf_ode_logp",
    "train_ensemble",
]
