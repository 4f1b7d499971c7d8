"""Manifold divergence of tangent vector fields given in embedded coordinates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold

DivergenceMethod = Literal["exact", "hutchinson"]


def manifold_divergence(
    field: Callable[[Tensor], Tensor],
    x: Tensor,
    manifold: Manifold,
    *,
    method: DivergenceMethod = "exact",
    generator: torch.Generator | None = None,
    create_graph: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Riemannian divergence of a tangent field on an embedded submanifold, with autograd.

    For a field v tangent to M and defined on a neighbourhood of M in :math:`R^D`, with ambient
    Jacobian :math:`J_{ij} = \partial v_i / \partial x_j` and tangent projector :math:`P_x`,
    :math:`\mathrm{div}_M v = \mathrm{tr}(P_x J) = \sum_b (P_x e_b) \cdot \nabla_x v_b`
    (only tangential derivatives enter). On :math:`S^d`, :math:`P = I - x x^T` and this is
    :math:`\mathrm{tr} J - x^T J x`. ``"exact"`` costs D backward passes (vectorised over the
    batch: samples must not interact inside ``field``); ``"hutchinson"`` uses one pass with a
    Gaussian probe in the tangent space, :math:`E[z^T J z] = \mathrm{tr}(J P)` for
    :math:`z = P\xi`.

    Args:
        field: Callable mapping x (B, D) to tangent vectors (B, D), differentiable in x; points of
            the batch must be processed independently.
        x: Tensor, shape (B, D), points on M (need not require grad).
        manifold: The manifold (its ``proju`` is the projector).
        method: ``"exact"`` or ``"hutchinson"``.
        generator: Generator for the Hutchinson probe.
        create_graph: Keep the graph of the divergence (needed when it enters a training loss).

    Returns:
        Tuple ``(v, div)``: v = field(x), shape (B, D); div, shape (B,).

    Raises:
        ValueError: On an unknown method.
    """
    with torch.enable_grad():
        xr = x if x.requires_grad else x.detach().requires_grad_(True)
        v = field(xr)
        if method not in ("exact", "hutchinson"):
            raise ValueError(f"divergence method must be 'exact' or 'hutchinson', got {method!r}")
        if not v.requires_grad:  # the field does not depend on x (nor on parameters)
            return v, torch.zeros(x.shape[0], dtype=v.dtype, device=v.device)
        if method == "exact":
            div = torch.zeros(x.shape[0], dtype=v.dtype, device=v.device)
            eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
            for b in range(x.shape[-1]):
                (g,) = torch.autograd.grad(
                    v[:, b].sum(),
                    xr,
                    create_graph=create_graph,
                    retain_graph=True,
                    materialize_grads=True,
                )
                pe = manifold.proju(xr.detach(), eye[b].expand_as(x))
                div = div + (pe * g).sum(-1)
        elif method == "hutchinson":
            z = manifold.proju(
                xr.detach(),
                torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator),
            )
            (g,) = torch.autograd.grad(
                (v * z).sum(),
                xr,
                create_graph=create_graph,
                retain_graph=create_graph,
                materialize_grads=True,
            )
            div = (g * z).sum(-1)
    return v, div
