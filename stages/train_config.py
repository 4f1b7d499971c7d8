"""DVC stage ``train_config@<catalogue>-<model>``: the resolved training config of one pair.

Reads the ``train`` section of params.yaml. The config of a (catalogue, model) pair is
``train.common`` deep-merged with ``train.<model>`` and then ``train.overrides.<catalogue>``
(optional: a catalogue without an entry trains with the shared config). It is checked by
building what every seed will build, then written to ``data/configs/<catalogue>/<model>.json``
as ``{"catalogue", "model", "seeds", "config"}``; ``train@<catalogue>-<model>`` depends on
that file instead of on the params, so a new catalogue needs no ``train.overrides`` entry and
an override of one catalogue retrains only that catalogue.

Usage::

    python -m stages.train_config --catalogue earthquake --model rsgm
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stages.common import deep_merge, load_params, section, write_json_atomic

SECTION = "train"
CONFIGS_DIR = Path("data/configs")
"""Where the resolved configs go: ``<catalogue>/<model>.json``."""


def model_config(train_params: dict[str, Any], catalogue: str, model: str) -> dict[str, Any]:
    """Merged config of one (catalogue, model) pair: common <- model <- catalogue override.

    Raises:
        KeyError: If the model has no section under ``train``.
        ValueError: If the merged config cannot build the seeds' trainer, manifold or loss.
    """
    from pipeline.variants import get_variant

    variant = get_variant(model)
    if model not in train_params:
        raise KeyError(f"params.yaml: no 'train.{model}:' section for model {model!r}")
    common = dict(train_params.get("common") or {})
    if variant.common_keys is not None:  # the keys of train.common this variant takes
        common = {k: v for k, v in common.items() if k in variant.common_keys}
    cfg = deep_merge(common, train_params[model])
    override = dict((train_params.get("overrides") or {}).get(catalogue) or {})
    # A catalogue's override, like train.common, applies only where the variant takes the key.
    if variant.common_keys is not None:
        accepted = set(variant.schema().fields)
        override = {k: v for k, v in override.items() if k in accepted}
    cfg = deep_merge(cfg, override)
    if "schedule" not in cfg:
        raise KeyError(f"params.yaml: train.common or train.{model} needs a 'schedule:'")
    # The merged config must also be complete and consistent (e.g. a rsgm-only loss key
    # from train.common in an ambient model): build what the seeds will build, once.
    variant.validate(cfg)
    return cfg


def config_path(configs_dir: Path, catalogue: str, model: str) -> Path:
    """``<configs_dir>/<catalogue>/<model>.json``: the file ``train@`` reads."""
    return configs_dir / catalogue / f"{model}.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.train_config", description=__doc__)
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--configs-dir", type=Path, default=CONFIGS_DIR)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve, check and write one pair's config; return what was written.

    Raises:
        KeyError, ValueError: On bad params (one line naming the key path).
    """
    from pipeline.variants import get_variant

    train_params = section(load_params(args.params), SECTION, args.params)
    model = args.model
    if get_variant(model).fitted_by != "train":
        raise ValueError(
            f"model {model!r} is not trained: it is fitted by {get_variant(model).fitted_by}@"
        )
    resolved = {
        "catalogue": args.catalogue,
        "model": model,
        "seeds": [int(s) for s in train_params["seeds"]],
        "config": model_config(train_params, args.catalogue, model),
    }
    path = config_path(args.configs_dir, args.catalogue, model)
    write_json_atomic(resolved, path)
    print(f"train_config {args.catalogue}/{model}: {path}")
    return resolved


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on bad params."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    flow = f"train-config-{args.catalogue}-{args.model}"
    return stage_main(lambda: run(args), flow, (KeyError, ValueError), "train_config")


if __name__ == "__main__":
    sys.exit(main())
