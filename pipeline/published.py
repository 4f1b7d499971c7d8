"""The published test-NLL table of the earth benchmark (DESIGN.md, "Evaluation protocol").

Kept apart from the report code so that the evaluation and the terminal table can use it
without importing plotting libraries.
"""

from __future__ import annotations

#: Catalogues of the published table, in its column order.
PUBLISHED_CATALOGUES: tuple[str, ...] = ("volcano", "earthquake", "flood", "fire")

#: Published test NLL (nats per point, lower is better) as ``method -> catalogue -> (mean, ±)``
#: where ``±`` is the published 95 % CI half-width over 5 seeds (``None`` where none was given).
#: Source: DESIGN.md, "Evaluation protocol".
PUBLISHED_NLL: dict[str, dict[str, tuple[float, float | None]]] = {
    "Mixture of Kent": {
        "volcano": (-0.80, 0.47),
        "earthquake": (0.33, 0.05),
        "flood": (0.73, 0.07),
        "fire": (-1.18, 0.06),
    },
    "Riemannian CNF": {
        "volcano": (-6.05, 0.61),
        "earthquake": (0.14, 0.23),
        "flood": (1.11, 0.19),
        "fire": (-0.80, 0.54),
    },
    "Moser Flow": {
        "volcano": (-4.21, 0.17),
        "earthquake": (-0.16, 0.06),
        "flood": (0.57, 0.10),
        "fire": (-1.28, 0.05),
    },
    "Stereographic score-based": {
        "volcano": (-3.80, 0.27),
        "earthquake": (-0.19, 0.05),
        "flood": (0.59, 0.07),
        "fire": (-1.28, 0.12),
    },
    "RSGM (De Bortoli et al. 2022)": {
        "volcano": (-4.92, 0.25),
        "earthquake": (-0.19, 0.07),
        "flood": (0.45, 0.17),
        "fire": (-1.33, 0.06),
    },
    "Riemannian diffusion (Huang et al. 2022, a bound)": {
        "volcano": (-6.61, 0.97),
        "earthquake": (-0.40, 0.05),
        "flood": (0.43, 0.07),
        "fire": (-1.38, 0.05),
    },
    "Riemannian flow matching (Chen & Lipman 2024)": {
        "volcano": (-7.93, 1.67),
        "earthquake": (-0.28, 0.08),
        "flood": (0.42, None),
        "fire": (-1.86, 0.11),
    },
}

#: Published rows that report a likelihood bound rather than the exact NLL.
PUBLISHED_BOUND_METHODS: frozenset[str] = frozenset(
    {"Riemannian diffusion (Huang et al. 2022, a bound)"}
)

#: Training steps of the published RSGM runs (GPU).
PUBLISHED_TRAIN_STEPS = 600_000

#: The published RSGM row (De Bortoli et al. 2022), the reference our default model is held to.
PUBLISHED_RSGM_METHOD = "RSGM (De Bortoli et al. 2022)"
