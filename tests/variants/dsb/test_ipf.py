"""IPF end to end on a tiny problem: checkpoints, resume, iteration 1 = the rsgm model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import pipeline.variants.dsb.ipf as ipf_module
from pipeline.checkpoints import EMA_FILE, META_FILE, load_checkpoint_weights
from pipeline.evaluation import load_trained
from pipeline.evaluation import log_density as rsgm_log_density
from pipeline.likelihood import pf_ode_logp
from pipeline.variants import get_variant
from pipeline.variants.dsb.ipf import IPFConfig, field_dir, load_bridge, run_ipf
from tests.errors import raises_naming
from tests.variants.dsb.tiny import tiny_data, tiny_rsgm_config

CONFIG = tiny_rsgm_config(beta_1=5.0)
SEED = 3


_data = tiny_data


def _snapshot(out: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_ipf_config_checks_its_keys() -> None:
    cfg = IPFConfig.from_dict({"n_iterations": 3, "train": {"steps": 5}, "loss": "mean_matching"})
    assert cfg.to_dict()["train"] == {"steps": 5} and cfg.loss == "mean_matching"
    with raises_naming(ValueError, "'sim_step'", "'sim_steps'"):
        IPFConfig.from_dict({"sim_step": 3})
    with raises_naming(ValueError, "loss", "'kl'"):
        IPFConfig(loss="kl")  # type: ignore[arg-type]
    with raises_naming(ValueError, "'stpes'"):
        IPFConfig(train={"stpes": 3})
    with raises_naming(ValueError, "'seed'"):
        IPFConfig(train={"seed": 1})
    with raises_naming(ValueError, "'sim_paths'"):
        IPFConfig(sim_paths=0)


def test_run_ipf_end_to_end_resumes_and_starts_from_the_rsgm_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = _data()
    ipf = IPFConfig(n_iterations=2, sim_paths=64, sim_steps=5, train={"steps": 20}, seed=SEED)
    out = tmp_path / "bridge"
    bridge = run_ipf(CONFIG, ipf, x, out)
    assert bridge.n_iterations == 2 and bridge.forward_fields[0] is None
    for n, d in ((1, "backward"), (2, "forward"), (2, "backward")):
        folder = field_dir(out, n, d)  # type: ignore[arg-type]
        assert (folder / EMA_FILE).is_file() and (folder / "model.safetensors").is_file()
        assert json.loads((folder / META_FILE).read_text())["step"] == 20
        assert not list(folder.glob("*.pt"))  # no pickle anywhere
    assert json.loads((out / "ipf.json").read_text())["ipf"]["sim_steps"] == 5
    # iteration 1 is bit-identical to a direct rsgm fit with this config and seed
    direct = tmp_path / "direct"
    get_variant("rsgm").fit(CONFIG, {"train": x}, SEED, direct)
    want = load_checkpoint_weights(direct, "ema")
    got = bridge.backward_fields[0].state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    # ... and so is its likelihood (F = 0): the bridge ODE is rsgm's
    pts = x[:6]
    lp_rsgm, _ = rsgm_log_density(load_trained(direct, device="cpu"), pts.numpy())
    lp_bridge = bridge.log_density(pts, iteration=1)
    assert torch.equal(lp_bridge.double(), torch.as_tensor(lp_rsgm))
    # iteration 2 moved away from iteration 1 and its ODE uses b_2 − f_2
    f2, b2 = bridge.forward_fields[1], bridge.backward_fields[1]
    assert f2 is not None
    assert any(not torch.equal(a, b) for a, b in zip(b2.parameters(), got.values(), strict=True))
    lp2 = bridge.log_density(pts, iteration=2)
    manual, _ = pf_ode_logp(
        lambda y, t: b2(y, t) - f2(y, t), bridge.process, pts.float(), t0=bridge.eps
    )
    assert torch.equal(lp2, manual) and bool(torch.isfinite(lp2).all())
    samples = bridge.sample(50, 10, torch.Generator().manual_seed(0))
    assert samples.shape == (50, 3) and (samples.norm(dim=-1) - 1).abs().max() < 1e-5

    # resume: nothing is trained or rewritten, the same weights come back
    before = _snapshot(out)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished iteration was retrained")

    monkeypatch.setattr(ipf_module, "train", refuse)
    monkeypatch.setattr(ipf_module.RSGM_PART, "fit", refuse)
    again = run_ipf(CONFIG, ipf, x, out)
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k != "ipf.json"} == {
        k: v for k, v in before.items() if k != "ipf.json"
    }
    for mods_a, mods_b in (
        (bridge.backward_fields, again.backward_fields),
        (bridge.forward_fields[1:], again.forward_fields[1:]),
    ):
        for a, b in zip(mods_a, mods_b, strict=True):
            assert a is not None and b is not None
            sa, sb = a.state_dict(), b.state_dict()
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
    loaded = load_bridge(out, device="cpu")
    assert loaded.n_iterations == 2
    assert torch.equal(loaded.log_density(pts, iteration=2), lp2)


def test_run_ipf_mean_matching_and_config_changes(tmp_path: Path) -> None:
    x = _data()
    out = tmp_path / "bridge"
    ipf = IPFConfig(
        n_iterations=2, sim_paths=64, sim_steps=5, train={"steps": 10}, loss="mean_matching",
        seed=SEED,
    )  # fmt: skip
    bridge = run_ipf(CONFIG, ipf, x, out)
    assert bridge.n_iterations == 2
    first = (field_dir(out, 1, "backward") / EMA_FILE).read_bytes()
    second = (field_dir(out, 2, "backward") / EMA_FILE).read_bytes()
    # another IPF loss: iteration 1 is kept, iteration 2 retrained
    run_ipf(CONFIG, IPFConfig(**{**ipf.to_dict(), "loss": "implicit"}), x, out)
    assert (field_dir(out, 1, "backward") / EMA_FILE).read_bytes() == first
    assert (field_dir(out, 2, "backward") / EMA_FILE).read_bytes() != second
    # other training data: everything is refitted
    run_ipf(CONFIG, IPFConfig(**{**ipf.to_dict(), "n_iterations": 1}), x[:100], out)
    assert (field_dir(out, 1, "backward") / EMA_FILE).read_bytes() != first
    assert not field_dir(out, 2, "backward").exists()
