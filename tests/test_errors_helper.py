"""tests.errors.raises_naming: the error's kind and the names it gives, not its wording."""

from __future__ import annotations

import pytest

from tests.errors import raises_naming


class _ParamsError(ValueError):
    """A subclass, to check that a subclass of the kind is accepted."""


def test_passes_when_the_kind_matches_and_every_name_is_in_the_message() -> None:
    with raises_naming(ValueError, "split.overrides.volcano", "'rsgm'") as info:
        raise ValueError("split.overrides.volcano 'rsgm': 2 new row(s) for volcano")
    assert isinstance(info.value, ValueError)
    assert info.value.args == ("split.overrides.volcano 'rsgm': 2 new row(s) for volcano",)


def test_names_are_plain_substrings_not_regexes() -> None:
    with raises_naming(KeyError, "ema.safetensors", "[0, 1]", "(n_lat, n_lon)"):
        raise KeyError("ema.safetensors: seeds [0, 1], shape (n_lat, n_lon)")
    with pytest.raises(AssertionError, match="does not name"):
        with raises_naming(ValueError, "ema.safetensors"):
            raise ValueError("emaXsafetensors")  # a regex "." would match this


def test_a_subclass_of_the_kind_is_accepted_and_no_names_checks_the_kind_only() -> None:
    with raises_naming(ValueError) as info:
        raise _ParamsError("anything")
    assert type(info.value) is _ParamsError


def test_fails_naming_the_missing_names_and_giving_the_message() -> None:
    with pytest.raises(AssertionError) as failure:
        with raises_naming(ValueError, "meta.json", "step", "model.json"):
            raise ValueError("meta.json: bad step")
    text = str(failure.value)
    assert "['model.json']" in text and "'meta.json: bad step'" in text
    assert "'step'" not in text.split("message was")[0]  # only the missing one is listed


def test_a_different_kind_is_not_caught() -> None:
    with pytest.raises(TypeError, match="wrong kind"):
        with raises_naming(ValueError, "wrong kind"):
            raise TypeError("wrong kind")


def test_no_error_at_all_fails_as_pytest_raises_does() -> None:
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        with raises_naming(ValueError, "x"):
            pass


def test_one_line_is_checked_only_when_asked() -> None:
    with raises_naming(ValueError, "row 3"):
        raise ValueError("row 3 is bad\nsee the log")
    with pytest.raises(AssertionError, match="several lines"):
        with raises_naming(ValueError, "row 3", one_line=True):
            raise ValueError("row 3 is bad\nsee the log")
    with raises_naming(ValueError, "row 3", one_line=True):
        raise ValueError("row 3 is bad")
