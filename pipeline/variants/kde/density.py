r"""``kde``: the incumbent, an adaptive kernel density on S² (smoothed seismicity).

.. math::

    p(x) = \frac{1}{N} \sum_{i=1}^{N} \big[(1 - b)\, k_{\sigma_i}(x \mid x_i)
           + b\, k_{\sigma_B}(x \mid x_i)\big],
    \qquad \sigma_i = \max(\alpha\, d_k(x_i), \sigma_{\min}),

where :math:`d_k(x_i)` is the geodesic distance from training event i to its k-th nearest
other training event (Helmstetter, Kagan & Jackson 2007), :math:`\sigma_B` a broad bandwidth
shared by every event and b its weight (b = 0: one kernel per event). k, α, σ_min, σ_B and b
are chosen by validation NLL (:func:`fit_kde`: coordinate descent over fixed grids, ties to
the first grid value, so the search is deterministic).

Kernels (``kernel``):

* ``vmf`` (default): the von Mises–Fisher density with κ = 1/σ²,
  :math:`k(x \mid x_i) = \frac{\kappa}{2\pi(1 - e^{-2\kappa})} e^{-\kappa |x - x_i|^2 / 2}`
  (w.r.t. area; :math:`1 - \cos\theta = |x - x_i|^2/2` keeps tiny angles exact). Closed form at
  any concentration (volcano asks for κ ~ 1e8: events repeat at one site), about 10 ns a pair.
* ``heat``: the S² heat kernel at heat time σ² (generator ½Δ). A heat-kernel mixture stays one
  under the heat flow, :math:`p_s = \frac{1}{N}\sum_i k_{\sigma_i^2 + s}`, so its score at every
  heat time is closed form and the probability-flow ODE driven by it reproduces p exactly
  (``tests/variants/test_kde.py``). Its exact evaluation costs about 1 µs a pair (an integral
  per pair below s = 0.5), a hundred times the vMF kernel, so it is the choice for small sets
  and for score models started from the kernel estimate, not the default.

vMF(κ) is the small-σ form of the heat kernel at s = 1/κ; :func:`KernelDensity.score` uses
that correspondence for a ``vmf`` model (the heat kernel at σ_i² + s), exact for ``heat``.

NLL is in nats per point w.r.t. the area measure of the unit sphere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from pipeline.atomic import atomic_write

__all__ = [
    "KDE_FILE",
    "KDEConfig",
    "KDEFit",
    "KernelDensity",
    "fit_kde",
    "kth_neighbour_distance",
    "load_kde",
    "save_kde",
]

KDE_FILE = "kde.safetensors"
"""Centres and per-event bandwidths of a fitted ``kde`` seed (safetensors: no pickle)."""
_META_KEY = "kde"  # the file's one metadata entry: kernel and broad kernel, as JSON
_LOG_2PI = math.log(2 * math.pi)
_KERNELS = ("vmf", "heat")
_CHUNK_PAIRS = 4_000_000  # query x centre pairs per block: bounds memory at ~100 MB


@dataclass(frozen=True)
class KDEConfig:
    """The ``kde`` params section (every field a params key; unknown keys are an error).

    Attributes:
        kernel: ``vmf`` or ``heat`` (module docstring).
        k_grid: Candidate neighbour ranks k.
        scale_grid: Candidate factors α on d_k.
        floor_deg_grid: Candidate smallest bandwidths σ_min, degrees.
        broad_deg_grid: Candidate broad bandwidths σ_B, degrees.
        broad_weight_grid: Candidate weights b of the broad kernel (0: none).
        sweeps: Most coordinate-descent sweeps over the five parameters.
    """

    kernel: str = "vmf"
    k_grid: tuple[int, ...] = (1, 2, 3, 5, 8, 13, 21, 34)
    scale_grid: tuple[float, ...] = (
        0.05,
        0.07,
        0.1,
        0.15,
        0.25,
        0.35,
        0.5,
        0.7,
        1.0,
        1.4,
        2.0,
        3.0,
    )
    floor_deg_grid: tuple[float, ...] = (1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3)
    broad_deg_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    broad_weight_grid: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8)
    sweeps: int = 3

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, where: str = "kde") -> KDEConfig:
        """Build from a params mapping.

        Raises:
            KeyError: On an unknown key (named with ``where``).
            ValueError: On a bad value (named with ``where``).
        """
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise KeyError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key.endswith("_grid"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise ValueError(f"{where}.{key}: must be a non-empty list, got {value!r}")
                cast = int if key == "k_grid" else float
                values[key] = tuple(cast(v) for v in value)
            else:
                values[key] = value
        cfg = cls(**values)
        cfg.check(where)
        return cfg

    def check(self, where: str = "kde") -> None:
        """Raise ValueError naming the key if a value is out of range."""
        if self.kernel not in _KERNELS:
            raise ValueError(f"{where}.kernel: must be one of {_KERNELS}, got {self.kernel!r}")
        if min(self.k_grid) < 1:
            raise ValueError(f"{where}.k_grid: ranks must be >= 1")
        for key in ("scale_grid", "floor_deg_grid", "broad_deg_grid"):
            if min(getattr(self, key)) <= 0:
                raise ValueError(f"{where}.{key}: values must be > 0")
        if not all(0.0 <= b < 1.0 for b in self.broad_weight_grid):
            raise ValueError(f"{where}.broad_weight_grid: weights must be in [0, 1)")
        if int(self.sweeps) < 1:
            raise ValueError(f"{where}.sweeps: must be >= 1")


def _sq_chord(x: Tensor, centres: Tensor) -> Tensor:
    """|x − c|², shape (M, N), by differences (not the Gram trick: tiny angles stay exact)."""
    return torch.cdist(x, centres, compute_mode="donot_use_mm_for_euclid_dist").square()


def _blocks(m: int, n: int) -> Iterator[slice]:
    step = max(1, _CHUNK_PAIRS // max(n, 1))
    for start in range(0, m, step):
        yield slice(start, min(m, start + step))


def _vmf_log_norm(kappa: Tensor) -> Tensor:
    """log(κ / (2π(1 − e^{−2κ}))): the vMF normaliser on S² w.r.t. area."""
    return torch.log(kappa) - _LOG_2PI - torch.log(-torch.expm1(-2 * kappa))


def _log_terms(sq: Tensor, sigma: Tensor, kernel: str) -> Tensor:
    """log k_σ for squared chords ``sq`` (M, N) and bandwidths ``sigma`` (N,) or scalar."""
    if kernel == "vmf":
        kappa = 1.0 / sigma.square()
        return _vmf_log_norm(kappa) - 0.5 * kappa * sq
    from pipeline.sde.heat_kernel import heat_kernel_logp_theta

    theta = 2 * torch.asin(torch.clamp(0.5 * torch.sqrt(sq), max=1.0))
    return heat_kernel_logp_theta(theta, sigma.square().expand_as(theta))


def _kernel_logsum(sq: Tensor, sigma: Tensor, kernel: str) -> Tensor:
    """log of the equal-weight kernel mean (1/N) Σ_i k_σi over the columns of ``sq`` (M, N),
    shape (M,)."""
    return torch.logsumexp(_log_terms(sq, sigma, kernel), dim=1) - math.log(sq.shape[1])


def _mix(sharp: Tensor, broad: Tensor, broad_weight: float) -> Tensor:
    """log((1 − b) e^sharp + b e^broad), elementwise."""
    return torch.logaddexp(sharp + math.log1p(-broad_weight), broad + math.log(broad_weight))


def _mixture_logp(
    sq: Tensor, sigma: Tensor, broad_sigma: float, broad_weight: float, kernel: str
) -> Tensor:
    """log p at the rows of ``sq`` (M, N): the equal-weight two-kernel mixture, shape (M,)."""
    sharp = _kernel_logsum(sq, sigma, kernel)
    if broad_weight <= 0.0:
        return sharp
    broad = _kernel_logsum(sq, torch.tensor(broad_sigma, dtype=sq.dtype), kernel)
    return _mix(sharp, broad, broad_weight)


def kth_neighbour_distance(points: Tensor, ks: Sequence[int]) -> dict[int, Tensor]:
    """Geodesic distance from each point to its k-th nearest other point, for each k.

    Args:
        points: Tensor, shape (N, 3), float64 points on S².
        ks: Ranks (1 = nearest other point; duplicates count, at distance 0).

    Returns:
        ``{k: Tensor (N,)}`` in radians; a rank beyond N − 1 uses the farthest point.
    """
    n = points.shape[0]
    kmax = min(max(ks), n - 1)
    if kmax < 1:
        raise ValueError(f"need at least 2 training points for a k-NN bandwidth, got {n}")
    nearest = torch.empty((n, kmax), dtype=points.dtype)
    for rows in _blocks(n, n):
        sq = _sq_chord(points[rows], points)
        idx = torch.arange(rows.start, rows.stop)
        sq[idx - rows.start, idx] = math.inf  # not its own neighbour
        nearest[rows] = torch.topk(sq, kmax, dim=1, largest=False).values
    chord = torch.sqrt(nearest)
    angle = 2 * torch.asin(torch.clamp(0.5 * chord, max=1.0))
    return {k: angle[:, min(k, kmax) - 1].clone() for k in ks}


@dataclass
class KernelDensity:
    """A fitted adaptive kernel density on S².

    Attributes:
        centres: Tensor, shape (N, 3), float64 training events.
        sigma: Tensor, shape (N,), float64 per-event bandwidths (radians).
        broad_sigma: The shared broad bandwidth (radians).
        broad_weight: Its weight b in [0, 1).
        kernel: ``vmf`` or ``heat``.
    """

    centres: Tensor
    sigma: Tensor
    broad_sigma: float
    broad_weight: float
    kernel: str = "vmf"

    def log_prob(self, x: Tensor | np.ndarray) -> Tensor:
        """Exact log-density, shape (M,), float64, for points ``x`` of shape (M, 3)."""
        xd = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        xd = xd.to(torch.float64).cpu()
        xd = xd / torch.linalg.vector_norm(xd, dim=-1, keepdim=True)
        out = torch.empty(xd.shape[0], dtype=torch.float64)
        for rows in _blocks(xd.shape[0], self.centres.shape[0]):
            sq = _sq_chord(xd[rows], self.centres)
            out[rows] = _mixture_logp(
                sq, self.sigma, self.broad_sigma, self.broad_weight, self.kernel
            )
        return out

    def _component_bandwidths(self) -> tuple[Tensor, Tensor, Tensor]:
        """All 2N (or N) components: centres (K, 3), σ (K,), weights (K,)."""
        n = self.centres.shape[0]
        if self.broad_weight <= 0.0:
            return self.centres, self.sigma, torch.full((n,), 1.0 / n, dtype=torch.float64)
        centres = torch.cat([self.centres, self.centres])
        sigma = torch.cat([self.sigma, torch.full((n,), self.broad_sigma, dtype=torch.float64)])
        w = torch.cat(
            [
                torch.full((n,), (1.0 - self.broad_weight) / n, dtype=torch.float64),
                torch.full((n,), self.broad_weight / n, dtype=torch.float64),
            ]
        )
        return centres, sigma, w

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Exact draws, shape (n, 3), float64: a component by weight, then its kernel.

        vMF: the cosine by its inverse CDF, 1 − cos θ = −log(u + (1 − u)e^{−2κ})/κ (exact at
        any κ); heat: :func:`pipeline.sde.exact_sampler.exact_bm_sample` at heat time σ².
        """
        centres, sigma, w = self._component_bandwidths()
        idx = torch.multinomial(w, n, replacement=True, generator=generator)
        x0, s = centres[idx], sigma[idx]
        if self.kernel == "heat":
            from pipeline.sde.exact_sampler import exact_bm_sample

            return exact_bm_sample(x0, s.square(), generator)
        kappa = 1.0 / s.square()
        u = torch.rand(n, dtype=torch.float64, generator=generator)
        one_minus_c = -torch.log(u + (1 - u) * torch.exp(-2 * kappa)) / kappa
        theta = 2 * torch.asin(torch.sqrt(torch.clamp(0.5 * one_minus_c, 0.0, 1.0)))
        z = torch.randn(n, 3, dtype=torch.float64, generator=generator)
        v = z - (z * x0).sum(-1, keepdim=True) * x0
        v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        x = torch.cos(theta)[:, None] * x0 + torch.sin(theta)[:, None] * v
        return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)

    def score(self, x: Tensor, s: Tensor | float) -> Tensor:
        """Riemannian score of the heat flow of the density at heat time ``s``.

        Exact for ``heat`` (every component at σ_i² + s); for ``vmf`` the same with σ_i²
        standing in for 1/κ_i (the small-σ correspondence).

        Args:
            x: Tensor, shape (B, 3), points on S².
            s: Heat time(s) >= 0, float or Tensor of shape (B,).

        Returns:
            Tensor, shape (B, 3), dtype of x.
        """
        from pipeline.sde.heat_kernel import heat_kernel_logp_dlogp_theta

        centres, sigma, w = self._component_bandwidths()
        xd = x.to(torch.float64).cpu()
        s_t = torch.as_tensor(s, dtype=torch.float64).reshape(-1, 1)
        out = torch.empty_like(xd)
        for rows in _blocks(xd.shape[0], centres.shape[0]):
            xr = xd[rows]
            sq = _sq_chord(xr, centres)
            theta = 2 * torch.asin(torch.clamp(0.5 * torch.sqrt(sq), max=1.0))
            s_rows = s_t if s_t.shape[0] == 1 else s_t[rows]
            heat_time = (sigma.square()[None, :] + s_rows).expand_as(theta)
            logp, dlogp_dc = heat_kernel_logp_dlogp_theta(theta, heat_time)
            resp = torch.softmax(logp + torch.log(w)[None, :], dim=1)
            diff = centres[None, :, :] - xr[:, None, :]
            tangent = diff - (xr[:, None, :] * diff).sum(-1, keepdim=True) * xr[:, None, :]
            out[rows] = ((resp * dlogp_dc)[:, :, None] * tangent).sum(1)
        return out.to(x.dtype).to(x.device)


@dataclass(frozen=True)
class KDEFit:
    """A fitted seed: the density, the chosen parameters and the search's record."""

    density: KernelDensity
    chosen: dict[str, float]
    val_nll: float
    search: list[dict[str, float]] = field(default_factory=list)


def _bandwidths(dk: Tensor, scale: float, floor_deg: float) -> Tensor:
    return torch.clamp(scale * dk, min=math.radians(floor_deg))


def fit_kde(
    train: Tensor | np.ndarray, val: Tensor | np.ndarray, cfg: KDEConfig | None = None
) -> KDEFit:
    """Choose k, α, σ_min, σ_B and b by validation NLL and return the fitted density.

    Coordinate descent: start at the grids' middle k, α = the grid value nearest 1, the
    smallest floor and b = 0; then, for up to ``cfg.sweeps`` sweeps, each parameter in turn
    takes its best grid value with the others held (ties: the first). Stops early when a sweep
    changes nothing. Deterministic: no randomness anywhere.

    Args:
        train: Training events, shape (N, 3).
        val: Validation events, shape (M, 3), M >= 1.
        cfg: The search grids (default :class:`KDEConfig`).

    Returns:
        The :class:`KDEFit` (its ``search`` lists every evaluated point and its val NLL).

    Raises:
        ValueError: With fewer than 2 training or no validation events.
    """
    cfg = cfg or KDEConfig()
    cfg.check()
    x = torch.as_tensor(np.asarray(train), dtype=torch.float64)
    v = torch.as_tensor(np.asarray(val), dtype=torch.float64)
    if v.shape[0] < 1:
        raise ValueError("kde needs at least 1 validation event to choose its bandwidths")
    dks = kth_neighbour_distance(x, cfg.k_grid)
    sq = _sq_chord(v, x)  # (M, N), reused by every candidate
    # The two kernel sums of a candidate, each cached on the parameters it depends on: a
    # change of b or σ_B then costs no pass over the M x N pairs. The same blocks and
    # helpers as KernelDensity.log_prob, so the values match it bit for bit.
    sharp_cache: dict[tuple[float, float, float], Tensor] = {}
    broad_cache: dict[float, Tensor] = {}

    def kernel_sum(sigma: Tensor) -> Tensor:
        blocks = _blocks(sq.shape[0], sq.shape[1])
        return torch.cat([_kernel_logsum(sq[rows], sigma, cfg.kernel) for rows in blocks])

    def sharp_logp(k: float, scale: float, floor_deg: float) -> Tensor:
        key = (k, scale, floor_deg)
        if key not in sharp_cache:
            sharp_cache[key] = kernel_sum(_bandwidths(dks[int(k)], scale, floor_deg))
        return sharp_cache[key]

    def broad_logp(broad_deg: float) -> Tensor:
        if broad_deg not in broad_cache:
            broad_cache[broad_deg] = kernel_sum(
                torch.tensor(math.radians(broad_deg), dtype=sq.dtype)
            )
        return broad_cache[broad_deg]

    cache: dict[tuple[float, ...], float] = {}
    record: list[dict[str, float]] = []

    def val_nll(p: dict[str, float]) -> float:
        key = (p["k"], p["scale"], p["floor_deg"], p["broad_deg"], p["broad_weight"])
        if p["broad_weight"] == 0.0:
            key = (p["k"], p["scale"], p["floor_deg"], 0.0, 0.0)  # σ_B unused
        if key not in cache:
            logp = sharp_logp(p["k"], p["scale"], p["floor_deg"])
            b = p["broad_weight"]
            if b > 0.0:
                logp = _mix(logp, broad_logp(p["broad_deg"]), b)
            value = float(-logp.mean())
            cache[key] = value if math.isfinite(value) else math.inf
            record.append({**p, "val_nll": cache[key]})
        return cache[key]

    grids: dict[str, tuple[float, ...]] = {
        "k": tuple(float(k) for k in cfg.k_grid),
        "scale": cfg.scale_grid,
        "floor_deg": cfg.floor_deg_grid,
        "broad_weight": cfg.broad_weight_grid,
        "broad_deg": cfg.broad_deg_grid,
    }
    point = {
        "k": grids["k"][len(grids["k"]) // 2],
        "scale": min(cfg.scale_grid, key=lambda a: abs(math.log(a))),
        "floor_deg": min(cfg.floor_deg_grid),
        "broad_deg": grids["broad_deg"][len(grids["broad_deg"]) // 2],
        "broad_weight": 0.0 if 0.0 in cfg.broad_weight_grid else cfg.broad_weight_grid[0],
    }
    best = val_nll(point)
    for _ in range(int(cfg.sweeps)):
        changed = False
        for name, grid in grids.items():
            for value in grid:
                trial = {**point, name: value}
                score = val_nll(trial)
                if score < best - 1e-12:
                    best, point, changed = score, trial, True
        if not changed:
            break
    sigma = _bandwidths(dks[int(point["k"])], point["scale"], point["floor_deg"])
    density = KernelDensity(
        x, sigma, math.radians(point["broad_deg"]), float(point["broad_weight"]), cfg.kernel
    )
    return KDEFit(density, dict(point), best, record)


def save_kde(out_dir: Path, fit: KDEFit, cfg: KDEConfig) -> None:
    """Write a fitted seed: ``kde.safetensors`` (centres, σ) and ``meta.json``, atomically.

    The model card (``model.json``) is written by :meth:`KernelDensityVariant.fit`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    d = fit.density
    tensors = {"centres": d.centres.contiguous(), "sigma": d.sigma.contiguous()}
    # One metadata key: safetensors writes its metadata map in hash order, so several keys
    # made the same fit give different bytes from run to run (and rerun every stage after).
    settings = {"kernel": d.kernel, "broad_sigma": d.broad_sigma, "broad_weight": d.broad_weight}
    meta = {_META_KEY: json.dumps(settings, sort_keys=True)}
    atomic_write(out_dir / KDE_FILE, lambda p: save_file(tensors, str(p), metadata=meta))
    record = {
        "step": 0,
        "loss_history": [],
        "chosen": fit.chosen,
        "val_nll": fit.val_nll,
        "search_points": len(fit.search),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
    }
    text = json.dumps(record, indent=1)
    atomic_write(out_dir / "meta.json", lambda p: p.write_text(text, encoding="utf-8"))


def load_kde(model_dir: Path) -> KernelDensity:
    """Read ``kde.safetensors`` of a seed folder (safetensors: no unpickling).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a kde file.
    """
    path = Path(model_dir) / KDE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no kde weights (run `dvc repro` to fit them)")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = json.loads((f.metadata() or {})[_META_KEY])
        tensors = load_file(str(path))
        return KernelDensity(
            tensors["centres"].to(torch.float64),
            tensors["sigma"].to(torch.float64),
            float(md["broad_sigma"]),
            float(md["broad_weight"]),
            str(md["kernel"]),
        )
    except Exception as exc:  # safetensors raises its own error type: report the path, re-raise
        raise ValueError(f"{path}: not a kde file ({exc})") from exc
