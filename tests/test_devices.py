"""Device choice and the checks that run only where a read-back is free (pipeline/devices.py)."""

from __future__ import annotations

import pytest
import torch

from pipeline.devices import checks_are_free, require_positive, resolve_device
from tests.errors import raises_naming


def test_auto_is_cuda_when_present_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("meta").type == "meta"


def test_checks_are_free_on_a_cpu_only() -> None:
    assert checks_are_free(torch.device("cpu"))
    assert not checks_are_free(torch.device("meta"))
    assert not checks_are_free(torch.device("cuda", 0))  # a device object needs no GPU


def test_require_positive_raises_on_a_cpu_with_the_message() -> None:
    require_positive(torch.tensor([1e-300, 2.0], dtype=torch.float64), "unused")
    with pytest.raises(ValueError, match="^heat time s must be > 0$"):
        require_positive(torch.tensor([0.5, 0.0]), "heat time s must be > 0")
    with raises_naming(ValueError, "sigma"):
        require_positive(torch.tensor(-1.0), "noise levels sigma must be > 0")


def test_require_positive_reads_nothing_back_off_a_cpu() -> None:
    # On the meta device any bool()/item() raises: the check must not read the values.
    require_positive(torch.empty(4, device="meta"), "never read")
