"""dvc.yaml's code dependencies, derived from each stage's import closure instead of hand-kept.

A stage's code deps are the files of every project module its command (``python -m
stages.<name>``) imports, transitively, function-level imports included, plus the
``__init__.py`` of every package on the way (an empty ``__init__.py`` is no dependency: DVC
warns on empty files). Files are listed one by one, never as folders, so editing a module
reruns exactly the stages that import it.

Model variants are the one exception (:mod:`pipeline.variants`): the engine imports them by
name, so no stage's closure holds one, and a stage declares the variant folder it runs by hand
(``pipeline/variants/${item.model}``: DVC hashes the folder). Such a declaration is kept, and
the stage also gets the *variant library*: every file that some variant imports outside its
own folder and that the stage's closure lacks (e.g. ``pipeline/ambient/models.py``). A variant
that imports another variant's folder is an error: its stages could not see that edit.

Modules that decide *where and how* work runs but never *what* it computes are left out by one
rule, :data:`ORCHESTRATION` (the Prefect/Dask fan-out, the stage wrapper, the stop flag):
switching the runner or fixing a retry must not
retrain a model.

Usage::

    python -m tools.dvc_deps            # print the stages whose deps differ; exit 1 if any
    python -m tools.dvc_deps --write    # rewrite dvc.yaml's code deps in place
    python -m tools.dvc_deps --who pipeline/variants/dsb/ipf.py   # the stages an edit reruns

Only the lines of a ``deps:`` block that name project code (``pipeline/``, ``stages/``) are
rewritten, with the comments between them; data deps, comments above them and the rest of
the file are kept byte for byte.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages")
ORCHESTRATION = ("pipeline/flows/", "pipeline/stopping.py", "pipeline/process_group.py")
"""Path prefixes of modules that cannot change a stage's outputs (left out of deps)."""
CODE_COMMENT = "# code: python -m tools.dvc_deps (import closure, orchestration left out)"
VARIANTS_DIR = "pipeline/variants"
_VARIANT_DEP = re.compile(r"^pipeline/variants/(\$\{item\.model\}|[A-Za-z_]\w*)$")

__all__ = [
    "ORCHESTRATION",
    "closure",
    "code_deps",
    "render",
    "stage_commands",
    "variant_library",
]


def _module_file(root: Path, name: str) -> Path | None:
    path = root / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imports(root: Path, file: Path) -> set[str]:
    """Project modules imported anywhere in a file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in found if n.split(".")[0] in PACKAGES and _module_file(root, n) is not None}


def closure(module: str, root: Path = ROOT) -> set[Path]:
    """Files (relative to ``root``) of a module, everything it imports and their packages.

    Args:
        module: Dotted module name, e.g. ``"stages.train"``.
        root: Project root.

    Returns:
        Relative paths; empty ``__init__.py`` files are left out.
    """
    files: set[Path] = set()
    todo = [module]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
            parent = _module_file(root, ".".join(parts[:i]))
            if parent is not None and parent.name == "__init__.py":
                todo.append(".".join(parts[:i]))
        file = _module_file(root, name)
        if file is None:
            continue
        if file.read_text(encoding="utf-8").strip():
            files.add(file.relative_to(root))
        todo.extend(_imports(root, file))
    return files


def variant_library(root: Path = ROOT) -> set[str]:
    """Files that variants import outside their own folders (the shared pieces a stage running
    a variant needs besides its folder).

    Raises:
        ValueError: If a variant imports another variant's folder.
    """
    out: set[str] = set()
    base = root / VARIANTS_DIR
    for init in sorted(base.glob("*/__init__.py")):
        name = init.parent.name
        own = f"{VARIANTS_DIR}/{name}/"
        for path in (p.as_posix() for p in closure(f"pipeline.variants.{name}", root)):
            if path.startswith(own):
                continue
            other = path[len(VARIANTS_DIR) + 1 :].split("/")
            if path.startswith(VARIANTS_DIR + "/") and len(other) > 1:
                raise ValueError(
                    f"{own}: imports {path}, another variant's folder; move what they share "
                    "into the engine (its stages could not see an edit there)"
                )
            out.add(path)
    return out


def code_deps(
    module: str,
    root: Path = ROOT,
    exclude: Iterable[str] = ORCHESTRATION,
    with_variants: bool = False,
) -> list[str]:
    """The sorted code deps of a stage module: its closure without the excluded prefixes
    (with ``with_variants``, plus the :func:`variant_library`)."""
    prefixes = tuple(exclude)
    found = {p.as_posix() for p in closure(module, root)}
    if with_variants:
        found |= variant_library(root)
    paths = sorted(found)
    # The stage's own script first, then the library, each sorted.
    own = [p for p in paths if p.startswith("stages/")]
    lib = [p for p in paths if not p.startswith("stages/")]
    return [p for p in own + lib if not p.startswith(prefixes)]


_STAGE = re.compile(r"^  (\w+):\s*$")
_CMD = re.compile(r"python -m (stages\.\w+)")
_ITEM = re.compile(r"^(\s*)- (\S+)\s*(#.*)?$")


def stage_commands(text: str) -> dict[str, str]:
    """``{stage name: stages module}`` of a dvc.yaml text."""
    out: dict[str, str] = {}
    stage = None
    for line in text.splitlines():
        head = _STAGE.match(line)
        if head:
            stage = head.group(1)
        match = _CMD.search(line)
        if stage and match and "cmd:" in line:
            out[stage] = match.group(1)
    return out


def _is_code(dep: str) -> bool:
    """A derived code dep (a declared variant folder is not: it is kept as written)."""
    return dep.split("/")[0] in PACKAGES and not _VARIANT_DEP.match(dep)


def render(text: str, root: Path = ROOT, exclude: Iterable[str] = ORCHESTRATION) -> str:
    """dvc.yaml text with each stage's code deps replaced by the derived list.

    Args:
        text: The current dvc.yaml.
        root: Project root (for the import closures).
        exclude: Path prefixes left out (default :data:`ORCHESTRATION`).

    Returns:
        The new text (equal to ``text`` when nothing changes).
    """
    commands = stage_commands(text)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    stage: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        head = _STAGE.match(line.rstrip("\n"))
        if head:
            stage = head.group(1)
        if stage in commands and line.strip() == "deps:":
            out.append(line)
            indent = None
            block: list[str] = []
            i += 1
            while i < len(lines):
                item = lines[i].rstrip("\n")
                match = _ITEM.match(item)
                is_comment = item.strip().startswith("#")
                if not (match or is_comment):
                    break
                if match:
                    indent = match.group(1)
                block.append(lines[i])
                i += 1
            indent = indent or " " * (len(line) - len(line.lstrip()) + 2)
            # Keep data deps with the comments directly above them; drop code deps and the
            # comments among them.
            kept: list[str] = []
            pending: list[str] = []
            runs_variants = False
            for raw in block:
                stripped = raw.strip()
                if stripped.startswith("#"):
                    pending.append(raw)
                    continue
                dep = stripped[2:].split("#")[0].strip()
                runs_variants = runs_variants or bool(_VARIANT_DEP.match(dep))
                if _is_code(dep):
                    pending = []
                else:
                    kept += pending + [raw]
                    pending = []
            out += kept
            out.append(f"{indent}{CODE_COMMENT}\n")
            deps = code_deps(commands[stage], root, exclude, with_variants=runs_variants)
            out += [f"{indent}- {dep}\n" for dep in deps]
            continue
        out.append(line)
        i += 1
    return "".join(out)


def dependent_stages(files: Iterable[str], root: Path = ROOT) -> dict[str, list[str]]:
    """For each file (relative to ``root``), the stages that depend on it, directly or through
    a folder dep, as DVC itself resolves ``dvc.yaml`` (``foreach``/``matrix`` expanded): the
    stages an edit of that file makes stale (their downstream stages rerun only if the
    stale stage's outputs change)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = [(s.addressing, [str(d.def_path) for d in s.deps]) for s in repo.index.stages]
    found: dict[str, list[str]] = {}
    for file in files:
        path = Path(file).as_posix()
        found[file] = sorted(
            name
            for name, deps in stages
            if any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Check (default) or rewrite dvc.yaml's code deps, or list the stages a file reaches."""
    parser = argparse.ArgumentParser(prog="python -m tools.dvc_deps", description=__doc__)
    parser.add_argument("--dvc-yaml", type=Path, default=ROOT / "dvc.yaml")
    parser.add_argument("--write", action="store_true", help="rewrite the file in place")
    parser.add_argument(
        "--who", nargs="+", metavar="FILE", help="print the stages that depend on each file"
    )
    args = parser.parse_args(argv)
    if args.who:
        for file, stages in dependent_stages(args.who, args.dvc_yaml.resolve().parent).items():
            print(f"{file}: {len(stages)} stage(s): {' '.join(stages) or '-'}")
        return 0
    text = args.dvc_yaml.read_text(encoding="utf-8")
    new = render(text, args.dvc_yaml.resolve().parent)
    if new == text:
        print(f"{args.dvc_yaml}: code deps are the derived ones")
        return 0
    if args.write:
        from pipeline.atomic import atomic_write

        atomic_write(args.dvc_yaml, lambda tmp: tmp.write_text(new, encoding="utf-8"))
        print(f"{args.dvc_yaml}: code deps rewritten")
        return 0
    import difflib

    diff = difflib.unified_diff(
        text.splitlines(keepends=True), new.splitlines(keepends=True), "dvc.yaml", "derived"
    )
    sys.stdout.writelines(diff)
    print(f"{args.dvc_yaml}: code deps differ from the derived ones (run with --write)")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
