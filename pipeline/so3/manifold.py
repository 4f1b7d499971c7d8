r"""The rotation group SO(3) ⊂ R^{3×3} with the Frobenius metric.

Points are rotation matrices stored flattened row-major, shape ``(..., 9)``; tangent vectors
at R are ``R Ω`` with Ω skew-symmetric, also flattened. The metric is the one induced by the
Frobenius inner product ⟨U, V⟩ = tr(UᵀV) of R^{3×3}: with Ω = hat(ω),
|R Ω|_F² = 2|ω|², so the geodesic ``t ↦ R exp(tΩ)`` turns by the angle |ω| t at speed √2 |ω|
and the distance between R₁ and R₂ is √2 θ, θ ∈ [0, π] the angle of R₁ᵀR₂. This metric is
twice the usual bi-invariant one (where SO(3) has volume 8π²), so the Riemannian volume is
vol(SO(3)) = (√2)³ · 8π² = 16√2 π², and the Haar probability measure has density
1 / (16√2 π²). Under Haar measure the rotation angle has density (1 − cos θ)/π on [0, π].

Embedded in R^{3×3}, SO(3) lies on the sphere of radius √3; its second fundamental form is
II(RΩ₁, RΩ₂) = R(Ω₁Ω₂ + Ω₂Ω₁)/2, the mean curvature vector is H = −R, so the shape operator
W_H is the identity; its Ricci curvature is Ric♯ = ¼ Id (constant sectional curvature 1/8 in
this metric). Hence ½W_H − Ric♯ = ¼ Id: the ambient model's curvature correction does not
vanish here (it does on S²).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold, safe_norm

__all__ = ["SO3", "hat", "vee"]

_NEAR_PI = 3.0
"""Above this angle the log map takes the axis from the symmetric part (sin θ is small)."""
_SMALL = 1e-4
_NEWTON_SCHULZ_STEPS = 8
"""From a start with |xᵀx − I| < 0.2 (entries) this reaches float64 round-off."""
"""Below this angle the Rodrigues coefficients use their Taylor series."""


def hat(w: Tensor) -> Tensor:
    """Skew matrix of a vector: hat(w) v = w × v.

    Args:
        w: Tensor, shape (..., 3).

    Returns:
        Tensor, shape (..., 3, 3).
    """
    zero = torch.zeros_like(w[..., 0])
    x, y, z = w[..., 0], w[..., 1], w[..., 2]
    rows = [
        torch.stack((zero, -z, y), dim=-1),
        torch.stack((z, zero, -x), dim=-1),
        torch.stack((-y, x, zero), dim=-1),
    ]
    return torch.stack(rows, dim=-2)


def vee(m: Tensor) -> Tensor:
    """Vector of the skew part of a matrix: vee(hat(w)) = w.

    Args:
        m: Tensor, shape (..., 3, 3).

    Returns:
        Tensor, shape (..., 3), ½ (m₃₂ − m₂₃, m₁₃ − m₃₁, m₂₁ − m₁₂).
    """
    return 0.5 * torch.stack(
        (m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]),
        dim=-1,
    )


def _skew(a: Tensor) -> Tensor:
    return 0.5 * (a - a.transpose(-1, -2))


def _angle_and_sin(q: Tensor) -> tuple[Tensor, Tensor]:
    """Rotation angle θ ∈ [0, π] of rotation matrices and the vector sin θ · axis."""
    s_axis = vee(q)  # sin θ · n
    cos = 0.5 * (q.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0)
    theta = torch.atan2(safe_norm(s_axis), cos)
    return theta, s_axis


def rodrigues(w: Tensor) -> Tensor:
    """exp(hat(w)) = I + (sin θ/θ) W + ((1 − cos θ)/θ²) W², θ = |w| (series near 0).

    Args:
        w: Tensor, shape (..., 3), rotation vectors.

    Returns:
        Tensor, shape (..., 3, 3), rotation matrices.
    """
    theta = safe_norm(w)
    small = theta < _SMALL
    t = torch.where(small, torch.ones_like(theta), theta)
    t2 = theta * theta
    a = torch.where(small, 1.0 - t2 / 6.0, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24.0, (1.0 - torch.cos(t)) / (t * t))
    big_w = hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand(big_w.shape)
    return eye + a[..., None, None] * big_w + b[..., None, None] * (big_w @ big_w)


def rotation_log(q: Tensor) -> Tensor:
    """Rotation vector ω (|ω| = θ ∈ [0, π]) with exp(hat(ω)) = q; stable near 0 and π.

    Args:
        q: Tensor, shape (..., 3, 3), rotation matrices.

    Returns:
        Tensor, shape (..., 3). At θ = π exactly either axis sign is a valid answer.
    """
    theta, s_axis = _angle_and_sin(q)
    sin = torch.sin(theta)
    small = theta < _SMALL
    near_pi = theta > _NEAR_PI
    regular = ~(small | near_pi)
    safe_sin = torch.where(regular, sin, torch.ones_like(sin))
    factor = torch.where(small, 1.0 + theta * theta / 6.0, theta / safe_sin)
    w_main = factor[..., None] * s_axis
    # Near π: n nᵀ = (sym(q) − cos θ I) / (1 − cos θ); take the best-conditioned column and
    # the sign that agrees with sin θ · n (which still carries it unless θ = π exactly).
    cos = torch.cos(theta)
    eye = torch.eye(3, dtype=q.dtype, device=q.device)
    sym = 0.5 * (q + q.transpose(-1, -2))
    denom = torch.where(near_pi, 1.0 - cos, torch.ones_like(cos))
    nn = (sym - cos[..., None, None] * eye) / denom[..., None, None]
    col = nn.diagonal(dim1=-2, dim2=-1).argmax(-1)
    pick = torch.gather(nn, -1, col[..., None, None].expand(*nn.shape[:-1], 1)).squeeze(-1)
    axis = pick / safe_norm(pick, keepdim=True)
    sign = torch.where((axis * s_axis).sum(-1) < 0, -1.0, 1.0).to(q.dtype)
    w_pi = (sign * theta)[..., None] * axis
    return torch.where(near_pi[..., None], w_pi, w_main)


class SO3(Manifold):
    """SO(3) ⊂ R^{3×3} (flattened to R⁹) with the Frobenius metric; see the module docstring.

    Attributes:
        dim: 3.
        ambient_dim: 9.
        curvature_operator_coeff: ¼ (½W_H − Ric♯ = ½ Id − ¼ Id).
        log_volume: log(16√2 π²).
    """

    log_volume: float

    def __init__(self) -> None:
        self.dim = 3
        self.ambient_dim = 9
        self.curvature_operator_coeff = 0.25
        self.log_volume = math.log(16.0 * math.sqrt(2.0) * math.pi**2)
        #: J(r) = (sin(θ/2)/(θ/2))² at the angle θ = r/√2; the cut locus is θ = π.
        self.radial_jacobian = (2, 1.0 / (2.0 * math.sqrt(2.0)))
        self.diameter = math.sqrt(2.0) * math.pi

    def exact_heat_kernel(self) -> tuple[Callable[..., Tensor], Callable[..., Tensor]]:
        """The heat kernel's exact score ``(x_s, x0, s) -> (B, 9)`` and an exact Brownian
        sampler ``(x0, s, generator) -> (B, 9)`` (:mod:`pipeline.so3.heat_kernel`): the DSM
        target and noise of :mod:`pipeline.transition`, found through the manifold so that the
        S² code does not import SO(3)."""
        from pipeline.so3.heat_kernel import so3_exact_bm_sample, so3_heat_kernel_score

        return so3_heat_kernel_score, so3_exact_bm_sample

    def __repr__(self) -> str:
        return "SO3()"

    # ------------------------------------------------------------------ helpers
    def _mat(self, x: Tensor, name: str = "x") -> Tensor:
        self._check_last_axis(x, name)
        return x.reshape(*x.shape[:-1], 3, 3)

    @staticmethod
    def _flat(m: Tensor) -> Tensor:
        return m.reshape(*m.shape[:-2], 9)

    def matrices(self, x: Tensor) -> Tensor:
        """Points or vectors as 3×3 matrices, shape (..., 3, 3)."""
        return self._mat(x)

    def from_matrices(self, m: Tensor) -> Tensor:
        """3×3 matrices flattened to the manifold's coordinates, shape (..., 9)."""
        return self._flat(m)

    def angle(self, x: Tensor, y: Tensor) -> Tensor:
        """Rotation angle θ ∈ [0, π] of xᵀy, shape (...)."""
        r1, r2 = torch.broadcast_tensors(self._mat(x), self._mat(y, "y"))
        return _angle_and_sin(r1.transpose(-1, -2) @ r2)[0]

    # ------------------------------------------------------------------ contract
    def projx(self, x: Tensor) -> Tensor:
        """Nearest rotation in Frobenius norm (the polar factor), differentiable near SO(3).

        Far from SO(3) (an entry of xᵀx − I at least 0.2): U diag(1, 1, det(UVᵀ)) Vᵀ from the
        SVD, without a gradient (the SVD's derivative is singular at matrices with equal
        singular values, which every rotation is). Near it: the Newton–Schulz iteration
        X ← ½ X (3I − XᵀX), which converges quadratically to the polar factor and whose
        derivative is the exact derivative of the projection (the PF-ODE's divergence and the
        curvature operators differentiate through it).
        """
        m = self._mat(x)
        eye = torch.eye(3, dtype=m.dtype, device=m.device)
        with torch.no_grad():
            u, _, vh = torch.linalg.svd(m)
            det = torch.linalg.det(u @ vh)
            d = torch.cat((torch.ones_like(u[..., 0, :2]), det[..., None]), dim=-1)
            nearest = u @ torch.diag_embed(d) @ vh
            gap = (m.transpose(-1, -2) @ m - eye).abs().amax(dim=(-1, -2))
            near = (gap < 0.2) & (torch.linalg.det(m) > 0)
        y = torch.where(near[..., None, None], m, nearest)
        for _ in range(_NEWTON_SCHULZ_STEPS):
            y = 0.5 * y @ (3.0 * eye - y.transpose(-1, -2) @ y)
        return self._flat(y)

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        """Orthogonal (Frobenius) projection onto T_R = {RΩ}: R skew(Rᵀ U)."""
        r, m = torch.broadcast_tensors(self._mat(x), self._mat(u, "u"))
        return self._flat(r @ _skew(r.transpose(-1, -2) @ m))

    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        """exp_R(RΩ) = R exp(Ω), by Rodrigues' formula (series near the identity)."""
        r, m = torch.broadcast_tensors(self._mat(x), self._mat(u, "u"))
        w = vee(r.transpose(-1, -2) @ m)
        return self._flat(r @ rodrigues(w))

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        """log_R₁(R₂) = R₁ hat(ω), ω the rotation vector of R₁ᵀR₂ (stable near 0 and π)."""
        r1, r2 = torch.broadcast_tensors(self._mat(x), self._mat(y, "y"))
        w = rotation_log(r1.transpose(-1, -2) @ r2)
        return self._flat(r1 @ hat(w))

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """√2 θ, θ the rotation angle of xᵀy."""
        return math.sqrt(2.0) * self.angle(x, y)

    def random_uniform(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Haar-uniform rotations from normalised 4-D Gaussians (unit quaternions)."""
        q = torch.randn(n, 4, dtype=torch.float64, device=device, generator=generator)
        q = q / q.norm(dim=-1, keepdim=True)
        w, a, b, c = q.unbind(-1)
        rows = [
            torch.stack((1 - 2 * (b * b + c * c), 2 * (a * b - c * w), 2 * (a * c + b * w)), -1),
            torch.stack((2 * (a * b + c * w), 1 - 2 * (a * a + c * c), 2 * (b * c - a * w)), -1),
            torch.stack((2 * (a * c - b * w), 2 * (b * c + a * w), 1 - 2 * (a * a + b * b)), -1),
        ]
        return self._flat(torch.stack(rows, dim=-2)).to(dtype)

    def check_point(self, x: Tensor, atol: float = 1e-5) -> bool:
        """RᵀR = I and det R = 1 within ``atol``."""
        if x.shape[-1] != self.ambient_dim:
            return False
        m = self._mat(x)
        eye = torch.eye(3, dtype=m.dtype, device=m.device)
        orth = (m.transpose(-1, -2) @ m - eye).abs().amax(dim=(-1, -2))
        det = (torch.linalg.det(m) - 1.0).abs()
        return bool((orth <= atol).all() and (det <= atol).all())

    def check_vector(self, x: Tensor, u: Tensor, atol: float = 1e-5) -> bool:
        """Rᵀ U is skew-symmetric within ``atol``."""
        if x.shape[-1] != self.ambient_dim or u.shape[-1] != self.ambient_dim:
            return False
        r, m = torch.broadcast_tensors(self._mat(x), self._mat(u, "u"))
        a = r.transpose(-1, -2) @ m
        return bool((a + a.transpose(-1, -2)).abs().max() <= 2 * atol)
