"""Assert on an error's kind and the things its message names, not on its wording.

A test that pins a message with ``pytest.raises(..., match=<regex of the wording>)`` breaks
whenever the sentence is reworded, although what the user needs from it (which key, which
file, which row, which value) is unchanged. ``raises_naming`` checks only that: the exception
type, and that each given name appears verbatim in ``str(exc)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["raises_naming"]


@contextmanager
def raises_naming(
    kind: type[BaseException], *names: str, one_line: bool = False
) -> Iterator[pytest.ExceptionInfo[BaseException]]:
    """Expect ``kind`` to be raised, with a message that names each of ``names``.

    Wraps ``pytest.raises(kind)``: the block must raise ``kind`` (or a subclass), else the test
    fails as with ``pytest.raises``. Afterwards each name must occur in ``str(exc)`` as a plain
    substring (no regex, so ``"ema.safetensors"`` or ``"[0, 1]"`` need no escaping).

    Example:
        The file and the fix are checked, not the sentence around them::

            with raises_naming(CheckpointError, "ema.safetensors", "dvc pull") as info:
                load_checkpoint_weights(folder, "ema")

    Args:
        kind: The exception type expected, exactly as ``pytest.raises`` takes it.
        *names: What the message must name: a params key, a file or path, the offending value,
            a row number, a catalogue or stage name. Keep the wording of the sentence out.
        one_line: Also require the message to be a single line (no ``"\\n"``).

    Yields:
        The ``pytest.ExceptionInfo``, filled once the block has raised, for further asserts.

    Raises:
        AssertionError: The message lacks one of ``names`` or, with ``one_line``, spans
            several lines; the failure gives the actual message.
    """
    with pytest.raises(kind) as info:
        yield info
    message = str(info.value)
    missing = [name for name in names if name not in message]
    assert not missing, (
        f"{kind.__name__} message does not name {missing!r}; the message was: {message!r}"
    )
    if one_line:
        assert "\n" not in message, (
            f"{kind.__name__} message spans several lines; the message was: {message!r}"
        )
