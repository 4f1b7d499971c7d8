"""Tests of the seed ensemble (pipeline/ensemble/): stacked network, loss, trainer, PF-ODE.

What is equal to what, on CPU in float64:

* K seeds trained together equal the same seeds trained one by one through the ensemble
  (K = 1, same generator seeds) to 1e-10, not bit for bit: a batched product of K matrices
  rounds differently from one (measured: at most 6e-17 after 20 steps);
* they also equal :func:`pipeline.training.train` of each seed (same initial weights, same
  config seed) to 1e-10, not bit for bit: the draws are the same in the same order, the
  vmapped network's products round differently (measured: at most 1.2e-16 after 20 steps);
* resuming from a checkpoint is bit-identical (weights, EMA, history, every file's bytes);
* the ensemble's PF-ODE NLL agrees with per-seed :func:`pipeline.likelihood.pf_ode_logp`
  within 1e-3 nats at rtol = atol = 1e-5 (measured: at most 1.4e-4 per point); K = 1 to
  rounding, with the same number of field evaluations.

The loss is DSM with the geodesic-random-walk sampler and the exact heat-kernel target, which
need no tables (the tabulated sampler and target take seconds to build); the production
config is checked by one ``slow`` test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import Tensor, nn

from pipeline.checkpoints import (
    CheckpointError,
    load_checkpoint_weights,
    load_state,
    read_checkpoint_meta,
)
from pipeline.ensemble import EnsembleDSMLoss, SeedEnsemble, ensemble_pf_ode_logp, train_ensemble
from pipeline.geometry import Sphere
from pipeline.likelihood import pf_ode_logp
from pipeline.losses import make_rsgm_loss
from pipeline.models import build_score_model
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.schedules import LinearBeta
from pipeline.stopping import StopRequested
from pipeline.training import TrainConfig, TrainingDivergedError, train

SPHERE = Sphere(2)
SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)
PROCESS = BrownianMotion(SPHERE, SCHED)
NET = {"hidden": 16, "depth": 2, "time_embedding": "log"}
LOSS_CFG = {"sampler": "grw", "grw_steps": 2, "target": "exact"}
ENSEMBLE_LOSS = EnsembleDSMLoss(LOSS_CFG, PROCESS)
SEED_LOSS = make_rsgm_loss(LOSS_CFG, PROCESS)
FILES = ("model.safetensors", "ema.safetensors", "state.safetensors", "meta.json")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is faster (and no spinning beside other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(seed: int, scaled: bool = True) -> nn.Module:
    """The rsgm score model (inv_std scaling, log time input) built after ``manual_seed``."""
    torch.manual_seed(seed)
    return build_score_model(SPHERE, NET, SCHED if scaled else None).double()


def _data(n: int = 200, seed: int = 123) -> Tensor:
    return SPHERE.random_uniform(n, generator=torch.Generator().manual_seed(seed)).double()


def _cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        steps=20, batch_size=32, lr=1e-3, warmup_steps=5, lr_schedule="cosine",
        ema_decay=0.9, checkpoint_every=10, log_every=5, seed=0, device="cpu", grad_clip=0.05,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _max_diff(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_stacked_network_evaluates_each_seed_with_its_own_weights() -> None:
    models = [_model(s) for s in (0, 1, 2)]
    ens = SeedEnsemble(models)
    assert ens.n_seeds == 3 and ens.dtype == torch.float64
    g = torch.Generator().manual_seed(0)
    x = SPHERE.random_uniform(3 * 7, generator=g).double().reshape(3, 7, 3)
    t = torch.rand(3, 7, generator=g, dtype=torch.float64)
    out = ens(x, t)
    assert out.shape == (3, 7, 3)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k], t[k]), rtol=0, atol=1e-12)
        state = ens.seed_state_dict(k)
        assert list(state) == list(model.state_dict())
        assert all(torch.equal(state[n], v) for n, v in model.state_dict().items())
        alone = ens.seed_module(k)
        assert type(alone) is type(model)
        torch.testing.assert_close(alone(x[k], t[k]), out[k], rtol=0, atol=1e-12)
    # Writing weights back keeps the stacked tensors (an optimiser holds them).
    before = ens.parameters()
    ens.load_seed_state_dicts([m.state_dict() for m in reversed(models)])
    assert all(a is b for a, b in zip(before, ens.parameters(), strict=True))
    torch.testing.assert_close(ens(x, t)[0], models[2](x[0], t[0]), rtol=0, atol=1e-12)


def test_bad_input_is_refused_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="K >= 1"):
        SeedEnsemble([])
    with pytest.raises(ValueError, match="state-dict layout"):
        SeedEnsemble([_model(0), build_score_model(SPHERE, {**NET, "hidden": 8}, SCHED).double()])
    with pytest.raises(ValueError, match="is a TangentScoreModel"):
        SeedEnsemble([_model(0), _model(1, scaled=False)])
    ens = SeedEnsemble([_model(0), _model(1)])
    x = SPHERE.random_uniform(8).double()
    with pytest.raises(ValueError, match=r"x must have shape \(K=2, B, D\)"):
        ens(x.reshape(1, 8, 3), torch.zeros(1, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"t must have shape \(K, B\)"):
        ens(x.reshape(2, 4, 3), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="need 2 state dicts"):
        ens.load_seed_state_dicts([ens.seed_state_dict(0)])
    with pytest.raises(ValueError, match="one generator per seed"):
        ENSEMBLE_LOSS(ens, x.reshape(2, 4, 3), [torch.Generator()])
    with pytest.raises(ValueError, match="DSM loss of Brownian motion"):
        EnsembleDSMLoss({"kind": "ism"}, PROCESS)
    with pytest.raises(ValueError, match="unknown loss config keys"):
        EnsembleDSMLoss({"kindd": "dsm"}, PROCESS)
    data, cfg = _data(), _cfg(steps=1)
    dirs = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(ValueError, match="K >= 1"):
        train_ensemble([], ENSEMBLE_LOSS, data, cfg, [], [])
    with pytest.raises(ValueError, match="2 models, 1 seeds"):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, data, cfg, [0], dirs)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, data, cfg, [3, 3], dirs)
    with pytest.raises(ValueError, match="out_dirs must be distinct"):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, data, cfg, [0, 1], dirs[:1] * 2)
    with pytest.raises(ValueError, match=r"train_data\[1\] must have shape \(N, D\)"):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, [data, data[:0]], cfg, [0, 1], dirs)
    with pytest.raises(ValueError, match=r"x must have shape \(K, N, D\)"):
        ensemble_pf_ode_logp(ens, PROCESS, x)


def test_ensemble_loss_is_each_seeds_make_rsgm_loss() -> None:
    models = [_model(s) for s in (0, 1, 2)]
    x0 = _data(3 * 32).reshape(3, 32, 3)
    gens = [torch.Generator().manual_seed(10 + k) for k in range(3)]
    losses = ENSEMBLE_LOSS(SeedEnsemble(models), x0, gens)
    for k, model in enumerate(models):
        alone = SEED_LOSS(model, x0[k], torch.Generator().manual_seed(10 + k))
        torch.testing.assert_close(losses[k], alone, rtol=0, atol=1e-12)
        # Every draw came from seed k's own generator, as many as the single-seed loss made.
        left = torch.Generator().manual_seed(10 + k)
        SEED_LOSS(model, x0[k], left)
        assert torch.equal(gens[k].get_state(), left.get_state())


def test_k3_training_equals_k1_runs_and_the_single_seed_trainer(tmp_path: Path) -> None:
    seeds = [10, 11, 12]
    datas = [_data(200, 123), _data(150, 124), _data(120, 125)]  # one split per seed
    cfg = _cfg()
    models = [_model(k) for k in range(3)]
    res = train_ensemble(
        models, ENSEMBLE_LOSS, datas, cfg, seeds, [tmp_path / f"k3_{s}" for s in seeds],
        progress=False,
    )  # fmt: skip
    assert [r.steps for r in res] == [20, 20, 20]
    for k, seed in enumerate(seeds):
        one = _model(k)
        (r1,) = train_ensemble(
            [one], ENSEMBLE_LOSS, datas[k], cfg, [seed], [tmp_path / f"k1_{seed}"], progress=False
        )
        single = _model(k)
        r2 = train(single, SEED_LOSS, datas[k], replace(cfg, seed=seed), tmp_path / f"tr_{seed}",
                   progress=False)  # fmt: skip
        raw = models[k].state_dict()
        assert _max_diff(raw, one.state_dict()) <= 1e-10
        assert _max_diff(res[k].ema_state, r1.ema_state) <= 1e-10
        assert _max_diff(raw, single.state_dict()) <= 1e-10
        assert _max_diff(res[k].ema_state, r2.ema_state) <= 1e-10
        for history in (r1.loss_history, r2.loss_history):
            assert [s for s, _ in history] == [s for s, _ in res[k].loss_history]
            for (_, a), (_, b) in zip(history, res[k].loss_history, strict=True):
                assert a == pytest.approx(b, rel=0, abs=1e-10)
        assert _max_diff(raw, _model(k).state_dict()) > 1e-3  # it did train


class Interrupt(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tmp_path: Path) -> None:
    data, cfg, seeds = _data(), _cfg(steps=30), [3, 4]
    full = [_model(0), _model(1)]
    res_a = train_ensemble(full, ENSEMBLE_LOSS, data, cfg, seeds,
                           [tmp_path / "a0", tmp_path / "a1"], progress=False)  # fmt: skip

    def kill_at_25(step: int, losses: list[float]) -> None:
        assert len(losses) == 2
        if step == 25:
            raise Interrupt

    dirs = [tmp_path / "b0", tmp_path / "b1"]
    with pytest.raises(Interrupt):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, data, cfg, seeds, dirs,
                       progress=False, callback=kill_at_25)  # fmt: skip
    assert [(read_checkpoint_meta(d) or {})["step"] for d in dirs] == [20, 20]
    resumed = [_model(7), _model(8)]  # other weights: everything must come from the checkpoints
    res_b = train_ensemble(resumed, ENSEMBLE_LOSS, data, cfg, seeds, dirs, progress=False)
    for k in range(2):
        assert res_b[k].resumed_from == 20 and res_b[k].steps == 30
        for name, value in full[k].state_dict().items():
            assert torch.equal(resumed[k].state_dict()[name], value), name
        for name, value in res_a[k].ema_state.items():
            assert torch.equal(res_b[k].ema_state[name], value), name
        assert res_b[k].loss_history == res_a[k].loss_history
        for name in FILES:
            assert (dirs[k] / name).read_bytes() == (tmp_path / f"a{k}" / name).read_bytes(), name


def test_seed_checkpoints_are_single_seed_checkpoints(tmp_path: Path) -> None:
    data, seeds, cfg = _data(), [5, 6], _cfg(steps=20)

    def stop_at_10(step: int, losses: list[float]) -> None:
        if step == 10:
            raise Interrupt

    dirs = [tmp_path / "s5", tmp_path / "s6"]
    models = [_model(0), _model(1)]
    with pytest.raises(Interrupt):
        train_ensemble(models, ENSEMBLE_LOSS, data, cfg, seeds, dirs, progress=False,
                       callback=stop_at_10)  # fmt: skip
    ens_at_10 = SeedEnsemble(models)  # not yet written back: the checkpoint holds the weights
    for k, d in enumerate(dirs):
        assert sorted(p.name for p in d.iterdir()) == sorted(FILES)  # no pickle (no state.pt)
        for which in ("ema", "model"):
            fresh = _model(99)
            fresh.load_state_dict(load_checkpoint_weights(d, which))  # type: ignore[arg-type]
            with safe_open(str(d / f"{which}.safetensors"), framework="pt") as f:
                assert (f.metadata() or {})["step"] == "10"
            assert _max_diff(fresh.state_dict(), ens_at_10.seed_state_dict(k)) > 0  # trained
        state = load_state(d / "state.safetensors")
        assert state["step"] == 10 and state["ema_num_updates"] == 10
        meta = read_checkpoint_meta(d)
        assert meta is not None and meta["config"]["seed"] == seeds[k]
    # The single-seed trainer continues a seed's folder as one of its own ...
    whole = [_model(0), _model(1)]
    res = train_ensemble(whole, ENSEMBLE_LOSS, data, cfg, seeds,
                         [tmp_path / "w5", tmp_path / "w6"], progress=False)  # fmt: skip
    cont = _model(42)
    r = train(cont, SEED_LOSS, data, replace(cfg, seed=5), dirs[0], progress=False)
    assert r.resumed_from == 10
    assert _max_diff(cont.state_dict(), whole[0].state_dict()) <= 1e-10
    assert _max_diff(r.ema_state, res[0].ema_state) <= 1e-10
    # ... and the loader reads what the ensemble wrote at the end.
    for which, expected in (("ema", res[1].ema_state), ("model", whole[1].state_dict())):
        saved = load_checkpoint_weights(tmp_path / "w6", which)  # type: ignore[arg-type]
        assert all(torch.equal(saved[n], v) for n, v in expected.items())
    # Seeds at different steps (20 and 10 now) do not resume together.
    with pytest.raises(CheckpointError, match="every seed has a checkpoint of one step"):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, data, cfg, seeds, dirs)


def test_ensemble_nll_agrees_with_per_seed_solves() -> None:
    models = [_model(s, scaled=False).requires_grad_(False) for s in (0, 1, 2)]
    ens = SeedEnsemble(models).requires_grad_(False)
    x = _data(50, 7)
    logp, _ = ensemble_pf_ode_logp(ens, PROCESS, x.expand(3, 50, 3))
    assert logp.shape == (3, 50)
    alone = [pf_ode_logp(model, PROCESS, x) for model in models]
    for k, (lp, _) in enumerate(alone):
        assert float((logp[k] - lp).abs().max()) < 1e-3
    # K = 1: the norm is the per-seed solve's, so the solve is the same to rounding.
    one, nfe_one = ensemble_pf_ode_logp(SeedEnsemble(models[:1]), PROCESS, x[None])
    assert nfe_one == alone[0][1]
    torch.testing.assert_close(one[0], alone[0][0], rtol=0, atol=1e-9)
    # Chunks of points per solve give the same densities within the tolerance.
    chunked, _ = ensemble_pf_ode_logp(ens, PROCESS, x.expand(3, 50, 3), batch_size=25)
    assert float((chunked - logp).abs().max()) < 1e-3


def test_a_stop_request_checkpoints_every_seed_and_a_bad_loss_names_its_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.ensemble.trainer as trainer

    data, cfg, seeds = _data(), _cfg(), [1, 2]
    dirs = [tmp_path / "a", tmp_path / "b"]
    calls = iter(range(100))
    monkeypatch.setattr(trainer, "stop_requested", lambda: next(calls) == 2)  # after step 3
    with pytest.raises(StopRequested, match="stopped at step 3 of 20"):
        train_ensemble([_model(0), _model(1)], ENSEMBLE_LOSS, data, cfg, seeds, dirs)
    assert [(read_checkpoint_meta(d) or {})["step"] for d in dirs] == [3, 3]
    monkeypatch.setattr(trainer, "stop_requested", lambda: False)

    def nan_for_seed_2(ens: SeedEnsemble, x0: Tensor, gens: Sequence[torch.Generator]) -> Tensor:
        losses = ENSEMBLE_LOSS(ens, x0, gens)
        return losses * torch.tensor([1.0, float("nan")], dtype=losses.dtype)

    with pytest.raises(TrainingDivergedError, match=r"seed\(s\) \[2\] is not finite at step 4"):
        train_ensemble([_model(0), _model(1)], nan_for_seed_2, data, cfg, seeds, dirs)
    assert [(read_checkpoint_meta(d) or {})["step"] for d in dirs] == [3, 3]


@pytest.mark.slow
def test_production_loss_config_is_each_seeds_make_rsgm_loss() -> None:
    """The params.yaml rsgm loss (exact sampler, tabulated target; tables take ~10 s)."""
    cfg = {"kind": "dsm", "target": "tabulated", "t_sampler": "log_uniform", "eps": 0.001,
           "weighting": "variance"}  # fmt: skip
    models = [_model(s) for s in (0, 1)]
    x0 = _data(2 * 64).reshape(2, 64, 3)
    losses = EnsembleDSMLoss(cfg, PROCESS)(
        SeedEnsemble(models), x0, [torch.Generator().manual_seed(k) for k in range(2)]
    )
    single = make_rsgm_loss(cfg, PROCESS)
    for k, model in enumerate(models):
        alone = single(model, x0[k], torch.Generator().manual_seed(k))
        torch.testing.assert_close(losses[k], alone, rtol=0, atol=1e-12)
