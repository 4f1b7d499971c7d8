"""The model names of geosgm and which trained weights each uses (no torch: stages that only
move files or read metrics import this, not :mod:`pipeline.zoo`)."""

from __future__ import annotations

__all__ = ["MODEL_KINDS", "TRAINED_FROM", "check_kind"]

MODEL_KINDS: tuple[str, ...] = (
    "rsgm",
    "ambient_raw",
    "ambient_rb",
    "ambient_rb_corrected",
    "rsgm_langevin",
    "dsb",
    "kde",
    "kde_rsgm",
)
"""Every model name; all but ``ambient_rb_corrected`` are trained (``dsb``: the diffusion
Schrödinger bridge, fitted by IPF; opt-in like ``rsgm_langevin``; ``kde``: the incumbent
adaptive kernel density, fitted by its own stage ``kde@<catalogue>``; ``kde_rsgm``: the
validation-weighted mixture of ``kde`` and ``rsgm``, fitted by ``ensemble@<catalogue>``)."""

TRAINED_FROM: dict[str, str] = {
    "rsgm": "rsgm",
    "rsgm_langevin": "rsgm_langevin",
    "ambient_raw": "ambient_raw",
    "ambient_rb": "ambient_rb",
    "ambient_rb_corrected": "ambient_rb",
    "dsb": "dsb",
    "kde": "kde",
    "kde_rsgm": "kde_rsgm",
}
"""Which trained checkpoint each model uses (the corrected model reuses ``ambient_rb``)."""


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a known model name.

    Raises:
        ValueError: If it is not.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; known: {', '.join(MODEL_KINDS)}")
    return kind
