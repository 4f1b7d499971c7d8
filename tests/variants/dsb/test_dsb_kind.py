"""The Schrödinger bridge as the model kind ``dsb``: fit_seed, load_trained, resume, config.

One tiny bridge (2 IPF iterations, 20 steps per field, 200 points) is fitted once per module;
the evaluation path must give the bridge's own likelihood and samples.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import pipeline.variants.dsb.ipf as ipf_module
from pipeline.checkpoints import EMA_FILE, META_FILE, write_model_card
from pipeline.evaluation import generate_samples, load_trained, log_density
from pipeline.variants import get_variant
from pipeline.variants.base import NetworkVariant
from pipeline.variants.dsb.config import ipf_config
from pipeline.variants.dsb.ipf import field_dir, load_bridge
from tests.errors import raises_naming
from tests.variants.dsb.tiny import tiny_data, tiny_rsgm_config

RSGM_PART = tiny_rsgm_config(beta_1=0.599)  # short horizon: s(T) = 0.3
# sim_paths * sim_steps = 640 = steps * batch_size
CONFIG: dict[str, Any] = {
    **RSGM_PART,
    "ipf": {"n_iterations": 2, "sim_paths": 64, "sim_steps": 10, "train": {"steps": 20}},
}
SEED = 2
ROOT = Path(__file__).resolve().parents[3]


_data = tiny_data


def _field_bytes(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.glob("iter*/**/*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("dsb") / "seed2"
    return out, get_variant("dsb").fit(copy.deepcopy(CONFIG), {"train": _data()}, SEED, out)


def test_fit_seed_writes_a_dsb_folder_with_totals_over_the_fields(
    fitted: tuple[Path, dict[str, Any]],
) -> None:
    out, result = fitted
    assert set(result) == {"seed", "steps", "train_seconds", "resumed_from", "loss_history"}
    assert result["seed"] == SEED and result["steps"] == 60 and result["resumed_from"] == 0
    assert result["train_seconds"] > 0
    steps = [s for s, _ in result["loss_history"]]
    # b_1's steps 5..20, then f_2's offset by 20, then b_2's offset by 40
    assert steps == sorted(steps) and steps[0] == 5 and steps[-1] == 60 and 25 in steps
    card = json.loads((out / "model.json").read_text())
    assert card == {"kind": "dsb", "config": CONFIG}
    meta = json.loads((out / META_FILE).read_text())
    assert meta["step"] == 60 and meta["loss_history"] == result["loss_history"]
    assert [f["steps"] for f in meta["fields"]] == [20, 20, 20]
    assert (out / "ipf.json").is_file()
    for n, d in ((1, "backward"), (2, "forward"), (2, "backward")):
        assert (field_dir(out, n, d) / EMA_FILE).is_file()  # type: ignore[arg-type]


def test_load_trained_reproduces_the_bridge_likelihood_and_sampler(
    fitted: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = fitted
    trained = load_trained(out, device="cpu")
    bridge = load_bridge(out, device="cpu")
    assert trained.kind == "dsb" and trained.config == CONFIG
    assert len(list(trained.net.children())) == 3  # b_1, f_2, b_2
    pts = _data(8)
    want = bridge.log_density(pts, rtol=1e-5, atol=1e-5).double().numpy()
    got, nfe = log_density(trained, pts.numpy(), rtol=1e-5, atol=1e-5)
    assert nfe > 0 and got.shape == (8,)
    assert got == pytest.approx(want, abs=1e-5)
    # the ODE field is b_2 − f_2, not b_2 alone (f_2 moved away from 0)
    f2, b2 = bridge.forward_field(2), bridge.backward_field(2)
    assert f2 is not None
    t = torch.full((8,), 0.5)
    assert torch.equal(trained.score_fn(pts, t), b2(pts, t) - f2(pts, t))
    assert not torch.allclose(trained.score_fn(pts, t), b2(pts, t))
    samples = generate_samples(trained, n=40, n_steps=10, seed=7)
    direct = bridge.sample(40, 10, torch.Generator().manual_seed(7)).double().numpy()
    assert samples.shape == (40, 3)
    assert samples == pytest.approx(direct, abs=1e-6)


def test_an_unchanged_second_fit_retrains_nothing(
    fitted: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, first = fitted
    before = _field_bytes(out)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished field was retrained")

    monkeypatch.setattr(ipf_module, "train", refuse)
    monkeypatch.setattr(ipf_module.RSGM_PART, "fit", refuse)
    again = get_variant("dsb").fit(copy.deepcopy(CONFIG), {"train": _data()}, SEED, out)
    assert again["steps"] == 60 and again["resumed_from"] == 60
    assert again["train_seconds"] == 0.0 and again["loss_history"] == first["loss_history"]
    assert _field_bytes(out) == before
    assert json.loads((out / META_FILE).read_text())["step"] == 60


def test_config_changes_discard_what_they_invalidate(tmp_path: Path) -> None:
    out = tmp_path / "seed0"
    one = {**copy.deepcopy(CONFIG), "ipf": {**CONFIG["ipf"], "n_iterations": 1}}
    get_variant("dsb").fit(one, {"train": _data()}, 0, out)
    first = (field_dir(out, 1, "backward") / EMA_FILE).read_bytes()
    # a stale iteration folder beyond n_iterations is removed; iteration 1 is kept
    stale = field_dir(out, 2, "forward")
    stale.mkdir(parents=True)
    (stale / "junk").write_text("x")
    assert get_variant("dsb").fit(one, {"train": _data()}, 0, out)["resumed_from"] == 20
    assert not (out / "iter02").exists()
    assert (field_dir(out, 1, "backward") / EMA_FILE).read_bytes() == first
    # iteration 1 alone is rsgm: the ODE field and the sampler's are b_1
    trained = load_trained(out, device="cpu")
    assert trained.score_fn is trained.sample_score_fn
    # another rsgm part (learning rate): iteration 1 is refitted
    other = copy.deepcopy(one)
    other["optim"]["lr"] = 1e-3
    assert get_variant("dsb").fit(other, {"train": _data()}, 0, out)["resumed_from"] == 0
    assert (field_dir(out, 1, "backward") / EMA_FILE).read_bytes() != first
    # a card asking for more iterations than are finished cannot be evaluated
    write_model_card(out, "dsb", CONFIG)
    with raises_naming(FileNotFoundError, str(out), "1 of 2"):
        load_trained(out, device="cpu")
    # another kind's folder is deleted, not resumed
    foreign = tmp_path / "foreign"
    write_model_card(foreign, "rsgm", RSGM_PART)
    (foreign / "junk").write_text("x")
    get_variant("dsb").fit(one, {"train": _data()}, 0, foreign)
    assert not (foreign / "junk").exists()
    assert json.loads((foreign / "model.json").read_text())["kind"] == "dsb"


def test_validate_config_checks_both_parts_of_a_dsb_config() -> None:
    get_variant("dsb").validate(CONFIG)
    with raises_naming(ValueError, "'sim_step'", "'sim_steps'"):
        get_variant("dsb").validate({**CONFIG, "ipf": {"sim_step": 3}})
    with raises_naming(ValueError, "ipf.seed"):
        get_variant("dsb").validate({**CONFIG, "ipf": {"seed": 3}})
    with raises_naming(ValueError, "'stpes'"):
        get_variant("dsb").validate({**CONFIG, "ipf": {"train": {"stpes": 3}}})
    with raises_naming(ValueError, "'dsb'", "'so3'"):
        get_variant("dsb").validate({**CONFIG, "manifold": {"name": "so3"}})
    with raises_naming(ValueError, "rsgm.loss.kind", "'dsn'"):  # the rsgm part is checked as rsgm
        get_variant("dsb").validate({**CONFIG, "loss": {**CONFIG["loss"], "kind": "dsn"}})
    with raises_naming(ValueError, "'ipf'", "rsgm"):  # only dsb takes ipf
        get_variant("rsgm").validate(CONFIG)
    assert ipf_config(CONFIG, seed=4).seed == 4
    # A bridge of several fields, not one network: it fits and loads itself.
    assert not isinstance(get_variant("dsb"), NetworkVariant)


def test_train_config_stage_resolves_a_dsb_config(tmp_path: Path) -> None:
    from stages.train_config import parse_args, run

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["dsb"] = {
        "schedule": {"beta_1": 0.599},
        "optim": {"steps": 30},
        "ipf": {"n_iterations": 3, "loss": "mean_matching", "train": {"steps": 10}},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    configs = tmp_path / "configs"
    args = ["--params", str(path), "--catalogue", "fire", "--model", "dsb"]
    resolved = run(parse_args([*args, "--configs-dir", str(configs)]))
    written = json.loads((configs / "fire" / "dsb.json").read_text())
    assert written == resolved and written["model"] == "dsb"
    cfg = written["config"]
    assert cfg["ipf"] == params["train"]["dsb"]["ipf"] and cfg["optim"]["steps"] == 30
    assert cfg["schedule"]["beta_1"] == 0.599 and cfg["schedule"]["beta_0"] == 0.001
    params["train"]["dsb"]["ipf"]["sim_step"] = 5
    path.write_text(yaml.safe_dump(params))
    from pipeline.config.schema import ParamsError

    with raises_naming(ParamsError, "params.yaml", "'sim_step'", "train.dsb.ipf"):
        run(parse_args([*args, "--configs-dir", str(configs)]))
