"""The ``geosgm`` console command (``geosgm = "pipeline.cli:main"``; ``python -m pipeline.cli``).

Submodules: ``commands`` (the argument parser, the sub-commands, their exit codes and the
supervision of what they start) and ``query`` (the query verbs ``density`` and ``sample``:
checked params sections, the chosen seeds' trained models).

Importing the package imports :mod:`pipeline.cli.commands` only, which imports the standard
library alone at the top: each sub-command imports what it needs (torch, prefect, cartopy)
when it runs, so ``geosgm --help`` stays fast.
"""

from pipeline.cli.commands import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
)

__all__ = ["EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
