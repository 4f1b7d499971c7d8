"""Apply a profile onto params.yaml's text, changing only the lines whose values change.

``yaml.safe_dump`` of the merged mapping would drop every comment of params.yaml. This is a
small line editor for the block style that file uses: mapping keys at increasing indentation,
each value either a scalar or flow collection on the key's line, or a nested block mapping.
A profile mapping recurses into a block mapping; any other profile value replaces the value on
the key's line (its trailing comment is kept). A key missing from the file, or a value spanning
several lines, is written as a block. The result is re-parsed and must equal
``deep_merge(old, profile)``, or :class:`ParamsEditError` is raised and nothing is returned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from pipeline.config import deep_merge

__all__ = ["ParamsEditError", "apply_profile_text"]

# A block-mapping key line: indentation, a plain or quoted key, then the rest of the line.
_KEY = re.compile(r"^( *)([A-Za-z0-9_.\-]+|\"[^\"\n]*\"|'[^'\n]*'):(?:[ \t]+(.*))?$")


class ParamsEditError(ValueError):
    """The profile cannot be applied to the file's text safely (one-line message)."""


def _is_content(line: str) -> bool:
    """A line that carries YAML content (not blank, not a whole-line comment)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split_comment(rest: str) -> tuple[str, str]:
    """``rest`` as (value text, trailing comment with the spaces before it)."""
    quote = ""
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            value = rest[:i].rstrip()
            return value, rest[len(value) :]
    return rest.rstrip(), ""


def _same(a: Any, b: Any) -> bool:
    # Dumps differ where == does not tell (True == 1, 1 == 1.0).
    return yaml.safe_dump(a) == yaml.safe_dump(b)


class _Dumper(yaml.SafeDumper):
    """Writes small floats as params.yaml does (``2.0e-4``, not ``0.0002``)."""


def _represent_float(dumper: yaml.SafeDumper, value: float) -> yaml.ScalarNode:
    if value == 0 or not 0 < abs(value) < 1e-2:
        return dumper.represent_float(value)
    for digits in range(1, 18):  # the shortest mantissa that reads back exactly
        text = f"{value:.{digits}e}"
        if float(text) == value:
            break
    mantissa, exponent = text.split("e")
    # PyYAML's YAML 1.1 floats need a dot and a signed exponent: 2.0e-4, never 2e-4.
    mantissa = mantissa.rstrip("0")
    mantissa += "0" if mantissa.endswith(".") else ""
    text = f"{mantissa}e{exponent[0]}{int(exponent[1:])}"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _represent_float)


def _dump(value: Any, flow: bool | None) -> str:
    return yaml.dump(value, Dumper=_Dumper, default_flow_style=flow, width=2**31, sort_keys=False)


def _flow(value: Any) -> str:
    """``value`` as one line of flow YAML."""
    text = _dump(value, flow=True).removesuffix("\n").removesuffix("\n...").strip()
    if "\n" in text:
        raise ParamsEditError(f"cannot write {value!r} on one line")
    return text


def _block(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` as block lines at ``indent``: mappings nest, other values in flow."""
    if isinstance(value, Mapping) and value:
        lines = [f"{' ' * indent}{_flow(key)}:"]
        for child_key, child in value.items():
            lines += _block(child_key, child, indent + 2)
        return lines
    return [f"{' ' * indent}{_flow(key)}: {_flow(value)}"]


class _Editor:
    """Edits ``lines`` in place; ranges are [start, end) line indices."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def _entries(self, start: int, end: int, indent: int) -> dict[str, tuple[int, int, str]]:
        """Keys of the block mapping at ``indent``: key -> (key line, span end, rest)."""
        found: dict[str, tuple[int, int, str]] = {}
        order: list[tuple[str, int, str]] = []
        for i in range(start, end):
            line = self.lines[i]
            if not _is_content(line) or _indent(line) != indent:
                continue
            match = _KEY.match(line)
            if match is None:
                continue
            key = match.group(2)
            if key[0] in "'\"":
                key = key[1:-1]
            order.append((key, i, match.group(3) or ""))
        for n, (key, i, rest) in enumerate(order):
            span_end = order[n + 1][1] if n + 1 < len(order) else end
            # Trailing comments and blank lines belong to what follows, not to this value.
            while span_end > i + 1 and not _is_content(self.lines[span_end - 1]):
                span_end -= 1
            if key in found:
                raise ParamsEditError(f"key {key!r} appears twice at line {i + 1}")
            found[key] = (i, span_end, rest)
        return found

    def _last_content(self, start: int, end: int) -> int:
        """Index after the last content line of [start, end) (``start`` if none)."""
        for i in range(end - 1, start - 1, -1):
            if _is_content(self.lines[i]):
                return i + 1
        return start

    def apply(
        self, start: int, end: int, indent: int, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> int:
        """Edits the mapping in [start, end) from ``old`` to ``deep_merge(old, new)``.

        Returns:
            The new end of the range.
        """
        for key, value in new.items():
            entries = self._entries(start, end, indent)
            if key not in entries:
                if key in old:
                    raise ParamsEditError(f"cannot find the line of key {key!r}")
                at = self._last_content(start, end)
                block = _block(key, value, indent)
                self.lines[at:at] = block
                end += len(block)
                continue
            line_no, span_end, rest = entries[key]
            before = old[key]
            value_text, comment = _split_comment(rest)
            one_line = span_end == line_no + 1
            if isinstance(value, Mapping) and isinstance(before, Mapping) and not value_text:
                child = [i for i in range(line_no + 1, span_end) if _is_content(self.lines[i])]
                if not child or _indent(self.lines[child[0]]) <= indent:
                    raise ParamsEditError(f"cannot find the block of key {key!r}")
                new_span = self.apply(
                    line_no + 1, span_end, _indent(self.lines[child[0]]), before, value
                )
                end += new_span - span_end
                continue
            merged = deep_merge({key: before}, {key: value})[key]
            if _same(merged, before):
                continue  # the line already says it
            key_match = _KEY.match(self.lines[line_no])
            assert key_match is not None  # _entries matched it
            prefix = self.lines[line_no][: key_match.end(2) + 1]
            if one_line and value_text and value_text[0] not in "|>&*!":
                self.lines[line_no] = f"{prefix} {_flow(merged)}{comment}"
                continue
            block = _block(key, merged, indent)
            self.lines[line_no:span_end] = block
            end += len(block) - (span_end - line_no)
        return end


def apply_profile_text(text: str, profile: Mapping[str, Any]) -> str:
    """params.yaml's ``text`` with ``profile`` deep-merged onto it, comments and layout kept.

    Args:
        text: The current params.yaml (block-style YAML with a mapping at the top).
        profile: The profile's mapping (as ``yaml.safe_load`` reads it).

    Returns:
        The new text: only lines whose values the profile changes differ (plus inserted
        blocks for keys the file lacks).

    Raises:
        ParamsEditError: If the text cannot be edited safely, or the edited text does not
            parse to ``deep_merge(old, profile)`` (one line).
    """
    old = yaml.safe_load(text) or {}
    if not isinstance(old, dict):
        raise ParamsEditError("expected a mapping at the top level")
    lines = text.split("\n")  # a final newline leaves a last empty line: join restores it
    _Editor(lines).apply(0, len(lines), 0, old, profile)
    new_text = "\n".join(lines)
    if not new_text.endswith("\n"):
        new_text += "\n"
    try:
        result = yaml.safe_load(new_text)
    except yaml.YAMLError as exc:
        raise ParamsEditError("the edited text is not valid YAML") from exc
    if not _same(result, deep_merge(old, profile)):
        raise ParamsEditError("the edited text does not parse to the merged parameters")
    return new_text
