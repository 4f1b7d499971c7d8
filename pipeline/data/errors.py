"""Errors raised by the catalogue code."""

from __future__ import annotations


class CatalogueError(ValueError):
    """A catalogue cannot be read, validated, stored or split.

    The message names the file and, where relevant, the line number and the reason.
    """


class SplitError(CatalogueError):
    """A train/val/test split cannot be built or does not match its catalogue."""
