"""The composite Gauss–Legendre rule against exact integrals."""

import math

import numpy as np
import pytest

from pipeline.numerics import composite_gauss_legendre
from tests.errors import raises_naming


@pytest.mark.parametrize("order", [1, 3, 8])
def test_exact_for_panel_polynomials_of_degree_below_2n(order: int) -> None:
    edges = np.array([-1.0, -0.2, 0.5, 2.0])
    nodes, weights = composite_gauss_legendre(edges, order)
    assert nodes.shape == weights.shape == (3, order)
    deg = 2 * order - 1
    exact = (2.0 ** (deg + 1) - (-1.0) ** (deg + 1)) / (deg + 1)
    assert (weights * nodes**deg).sum() == pytest.approx(exact, rel=1e-13)
    assert weights.sum() == pytest.approx(3.0, rel=1e-15)
    # Nodes lie inside their own panel.
    assert np.all(nodes > edges[:-1, None]) and np.all(nodes < edges[1:, None])


def test_batched_edges_integrate_each_row() -> None:
    top = np.array([0.5, 1.0, math.pi])
    edges = top[:, None] * np.linspace(0.0, 1.0, 9)
    nodes, weights = composite_gauss_legendre(edges, 6)
    assert nodes.shape == (3, 8, 6)
    got = (weights * np.sin(nodes)).sum(axis=(-2, -1))
    np.testing.assert_allclose(got, 1.0 - np.cos(top), rtol=1e-12)


@pytest.mark.parametrize(("edges", "order"), [([0.0, 1.0], 0), ([1.0], 4), (2.0, 4)])
def test_bad_arguments_raise(edges: object, order: int) -> None:
    with raises_naming(ValueError, "order" if order < 1 else "edges"):
        composite_gauss_legendre(edges, order)  # type: ignore[arg-type]
