"""DVC stage ``derive@<catalogue>``: the model folders of post-hoc variants.

A post-hoc variant evaluates another model's trained weights differently
(``ambient_rb_corrected``: the ``ambient_rb`` weights with the curvature correction; see
:attr:`pipeline.variants.base.Variant.trained_from`). This stage copies the weights' folder to
``data/models/<catalogue>/<variant>/``, byte for byte (the DVC cache stores the files once), so
that ``evaluate@<catalogue>-<variant>`` and ``maps@…`` depend on their own folder only and
retraining one model kind reruns only the stages that read it.

Usage::

    python -m stages.derive --catalogue earthquake --model ambient_rb_corrected
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> Path:
    """Copy the trained folder the variant uses to the variant's own folder.

    Raises:
        ValueError: If the model is not a post-hoc variant.
        FileNotFoundError: If the trained folder is missing.
    """
    from pipeline.atomic import atomic_copy_tree
    from pipeline.variants import get_variant

    model = args.model
    source = get_variant(model).trained_from
    if source == model:
        raise ValueError(f"{model!r} is trained by train@{args.catalogue}-{model}, not derived")
    src = args.models_dir / args.catalogue / source
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: missing (run train@{args.catalogue}-{source})")
    dest = atomic_copy_tree(src, args.models_dir / args.catalogue / model)
    print(f"derive {args.catalogue}/{model}: {source} weights copied to {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    """Write the variant's model folder; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m stages.derive", description=__doc__)
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    args = parser.parse_args(argv)
    from pipeline.flows.stage import stage_main

    flow = f"derive-{args.catalogue}-{args.model}"
    return stage_main(lambda: run(args), flow, (ValueError, FileNotFoundError), "derive")


if __name__ == "__main__":
    raise SystemExit(main())
