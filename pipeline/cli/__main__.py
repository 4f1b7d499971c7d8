"""``python -m pipeline.cli``: the ``geosgm`` command run by this interpreter."""

from pipeline.cli.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
