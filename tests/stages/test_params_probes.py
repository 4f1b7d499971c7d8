"""Params mistakes are one line on stderr naming the key path, exit 1, no traceback.

Each probe is a mistake a user made in params.yaml that used to be ignored (a typo in a key:
a different model, rc 0) or to end in a 150-line traceback that never named the key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import deep_merge
from tests.errors import raises_naming

ROOT = Path(__file__).resolve().parents[2]


def _params() -> dict[str, Any]:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    return deep_merge(base, yaml.safe_load((ROOT / "profiles/smoke.yaml").read_text()))


def _set(params: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(params)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


TRAIN_PROBES = [
    ("train.common.optim.lr_shedule", "cosine", "unknown key 'lr_shedule' in train.common.optim; did you mean 'lr_schedule'?"),  # noqa: E501
    ("train.rsgm.score_scalng", "inv_std", "unknown key 'score_scalng' in train.rsgm; did you mean 'score_scaling'?"),  # noqa: E501
    ("train.rsgm.optim.steps", -5, "train.rsgm.optim.steps: expected an integer >= 0, got -5"),  # noqa: E501
    ("train.common.optim.batch_size", 0, "train.common.optim.batch_size: expected an integer >= 1, got 0"),  # noqa: E501
    ("train.rsgm.optim.steps", "abc", "train.rsgm.optim.steps: expected an integer >= 0, got 'abc'"),  # noqa: E501
    ("train.common.optim.lr", "fast", "train.common.optim.lr: expected a number > 0, got 'fast'"),  # noqa: E501
    ("train.overrides.earthquake", {"optim": {"stpes": 3}}, "unknown key 'stpes' in train.overrides.earthquake.optim; did you mean 'steps'?"),  # noqa: E501
    ("train.rsgm.loss.target", "exactly", "train.rsgm.loss.target: expected one of 'exact', 'tabulated', 'varadhan', got 'exactly'"),  # noqa: E501
    ("train.runner.kind", "gpu", "train.runner.kind: expected one of 'thread', 'process', 'dask', got 'gpu'"),  # noqa: E501
    ("train.rsgm.network.depth", 2.5, "train.rsgm.network.depth: expected an integer >= 1, got 2.5"),  # noqa: E501
    ("train.dsb.ipf.sim_step", 50, "unknown key 'sim_step' in train.dsb.ipf; did you mean 'sim_steps'?"),  # noqa: E501
    ("train.dsb.ipf.train.stpes", 50, "unknown key 'stpes' in train.dsb.ipf.train; did you mean 'steps'?"),  # noqa: E501
    ("train.dsb.ipf.loss", "kl", "train.dsb.ipf.loss: expected one of 'implicit', 'mean_matching', got 'kl'"),  # noqa: E501
]  # fmt: skip

EVALUATE_PROBES = [
    ("evaluate.rtoll", 1e-5, "unknown key 'rtoll' in evaluate; did you mean 'rtol'?"),
    ("evaluate.atol", -1.0, "evaluate.atol: expected a number > 0, got -1.0"),
    ("evaluate.normalization_grid", [8], "evaluate.normalization_grid: expected a list"),
    ("evaluate.val", "yes", "evaluate.val: expected true or false, got 'yes'"),
]


def _run(
    stage: str, params: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    if stage == "train":
        from stages.train import main
    elif stage == "train_config":
        from stages.train_config import main
    else:
        from stages.evaluate import main
    rc = main(["--params", str(path), "--catalogue", "earthquake", "--model", "rsgm"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "value", "message"), TRAIN_PROBES, ids=[p[0] for p in TRAIN_PROBES]
)
@pytest.mark.parametrize("stage", ["train_config", "train"])
def test_train_params_mistake_is_one_line_naming_the_key(
    stage: str,
    key: str,
    value: Any,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, err = _run(stage, _set(_params(), key, value), tmp_path, capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{stage}: error: ") and message in lines[0], lines[0]
    assert not (tmp_path / "data").exists()  # nothing was trained


@pytest.mark.parametrize(
    ("key", "value", "message"), EVALUATE_PROBES, ids=[p[0] for p in EVALUATE_PROBES]
)
def test_evaluate_params_mistake_is_one_line_naming_the_key(
    key: str, value: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, err = _run("evaluate", _set(_params(), key, value), tmp_path, capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate: error: "), err
    assert message in lines[0], lines[0]


def test_every_shipped_profile_passes_the_schema() -> None:
    from pipeline.config.params_schema import check_params

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    check_params(base)
    for profile in sorted((ROOT / "profiles").glob("*.yaml")):
        check_params(deep_merge(base, yaml.safe_load(profile.read_text())), str(profile))


def test_schema_keys_match_the_configs_they_describe() -> None:
    """The optim and network schemas list exactly the dataclass fields the library takes."""
    from dataclasses import fields

    from pipeline.config.params_schema import IPF, NETWORK, OPTIM
    from pipeline.config.train import TrainConfig
    from pipeline.models.mlp import MLPConfig
    from pipeline.variants.dsb.config import IPFConfig

    assert set(OPTIM.fields) == {f.name for f in fields(TrainConfig)} - {"seed"}
    assert set(NETWORK.fields) == {f.name for f in fields(MLPConfig)}
    assert set(IPF.fields) == {f.name for f in fields(IPFConfig)} - {"seed"}
    assert IPF.fields["train"] is OPTIM


def test_dsb_is_opt_in_and_allowed_in_every_models_list() -> None:
    """train.dsb ships as a section, in no default list; every models list may name it."""
    from pipeline.config.params_schema import check_params

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert "dsb" in base["train"]
    for name in ("train", "evaluate", "maps"):
        assert "dsb" not in base[name]["models"]
    opted = copy.deepcopy(base)
    for name in ("train", "evaluate", "maps"):
        opted[name]["models"] = [*base[name]["models"], "dsb"]
    check_params(opted)


def test_unknown_top_level_section_is_named() -> None:
    from pipeline.config.params_schema import check_params
    from pipeline.config.schema import ParamsError

    with raises_naming(ParamsError, "params.yaml", "'trian'", "'train'"):
        check_params({"trian": {}})
