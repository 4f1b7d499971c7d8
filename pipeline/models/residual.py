"""A score model written as the reference law's score plus a learned tangent residual."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["ReferenceResidualScore"]


class ReferenceResidualScore(nn.Module):
    r"""``s(x, t) = ∇log π(x) + net(x, t)``: the network learns the departure from the reference.

    With Langevin noising the true score tends to the reference's :math:`-\nabla U` as t grows,
    so the residual tends to 0; and the probability-flow field
    :math:`\beta(b - \tfrac12 s) = -\tfrac12\beta\,\mathrm{net}` no longer carries
    :math:`\nabla U`, which on S^d is discontinuous at the antipode of μ (a conical source of
    the flow that a smooth network could not cancel). The weights are those of ``net`` (the
    state dict has ``net.`` keys); the reference score holds no parameters.

    Args:
        net: Tangent score network ``net(x (B, D), t (B,)) -> (B, D)``.
        reference_score: ``x (B, D) -> (B, D)``, the reference law's score (tangent).
    """

    def __init__(self, net: nn.Module, reference_score: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.net = net
        self.reference_score = reference_score

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Score at (x, t), shape (B, D)."""
        return self.reference_score(x) + self.net(x, t)
