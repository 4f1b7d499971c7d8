"""Every command in the README is checked: make targets exist, ``geosgm`` command lines parse
with the real CLI parser and name real catalogues, models, profiles and stages, and the files
and links it names exist. ``geosgm metrics`` (the one command that needs no training and
writes nothing) is run for real on the committed results."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
CATALOGUES = set(PARAMS["ingest"]["catalogues"])
VARIANTS = {p.name for p in (ROOT / "pipeline" / "variants").iterdir() if p.is_dir()} - {
    "__pycache__"
}
PROFILES = {p.stem for p in (ROOT / "profiles").glob("*.yaml")}


def _bash_lines() -> list[str]:
    """Command lines of the README's ```bash blocks (comments stripped)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _geosgm_commands() -> list[list[str]]:
    commands = []
    for line in _bash_lines():
        for part in line.split("&&"):
            words = shlex.split(part)
            # An environment assignment may come first (VAR=value geosgm run).
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words = words[1:]
            if words and words[0] in ("geosgm", ".venv/bin/geosgm"):
                commands.append(words[1:])
    return commands


def test_the_readme_has_the_two_commands_first() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S)
    assert first_block is not None
    commands = [ln.split("#")[0].strip() for ln in first_block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    assert 150 <= len(README.splitlines()) <= 250


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    used = {ln.split()[1] for ln in _bash_lines() if ln.startswith("make ")}
    assert used and used <= targets, used - targets


@pytest.mark.parametrize("argv", _geosgm_commands(), ids=lambda a: " ".join(a)[:60])
def test_geosgm_command_parses_and_names_real_things(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)  # argparse exits 2 on a bad command line
    if getattr(args, "catalogue", None) is not None:
        assert args.catalogue in CATALOGUES
        assert args.model in VARIANTS
    if argv[0] == "profile":
        assert args.name in PROFILES
    dvc_yaml = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    for target in getattr(args, "targets", []) or []:
        stage, _, item = target.partition("@")
        assert re.search(rf"^  {re.escape(stage)}:", dvc_yaml, flags=re.M), target
        catalogue, _, model = item.partition("-")
        assert catalogue in CATALOGUES and model in VARIANTS, target


def test_the_command_summary_names_real_subcommands() -> None:
    block = re.search(r"## Commands\n\n```\n(.*?)```", README, flags=re.S)
    assert block is not None
    names = {ln.split()[1] for ln in block.group(1).splitlines() if ln.startswith("geosgm ")}
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert names and names <= set(sub.choices), names - set(sub.choices)


def test_linked_and_named_files_are_in_git() -> None:
    # Tracked, not merely present: a fresh clone has only what git tracks.
    links = re.findall(r"\]\(([^)#]+)\)", README)
    named = re.findall(r"`((?:docs|reports|profiles|stages|data|pipeline)/[^`<>*\s]+)`", README)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    missing = [
        p
        for p in [*links, *named]
        if not any(t == p.rstrip("/") or t.startswith(p.rstrip("/") + "/") for t in tracked)
    ]
    assert links and not missing, missing


def test_geosgm_metrics_runs_on_the_committed_results() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("geosgm")), "metrics"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "kde" in done.stdout and "volcano" in done.stdout
