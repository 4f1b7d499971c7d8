"""The ``geosgm`` console command: its parser, sub-commands and exit codes.

Sub-commands are thin: each parses its arguments and calls the library. Heavy imports
(torch, prefect, cartopy) happen inside the sub-command so ``geosgm --help`` stays fast.

Exit codes: 0 success, 1 a failure of the work itself (a stage failed, bad input, a corrupt
``reports/summary.json``), 2 a usage error (argparse, an unknown profile, a revision that
begins with ``-``), 3 ``refresh`` found the lock held, 130/143 interrupted by SIGINT/SIGTERM.
Errors are one line on stderr, ``geosgm <command>: ...``, without a traceback.

A closed stdout (``geosgm compare A B | head -1``) is not an error: the command stops writing
and exits 0 quietly (rather than the shell's 141 for SIGPIPE), whatever the sub-command.

Stopping: ``run``, ``refresh`` and ``serve`` run under :func:`pipeline.process_group.supervise`:
SIGINT/SIGTERM is forwarded to every process they started (``dvc repro``, the stages and
their workers, flow runs), which get ``$GEOSGM_STOP_GRACE_S`` (20 s) to exit before SIGKILL;
then the Prefect server is stopped and the command exits 128 + the signal number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
#: A usage error: argparse's own, and the ones a sub-command finds in its arguments.
EXIT_USAGE = 2
#: ``geosgm refresh``: another refresh holds the lock; nothing was changed (retry later).
EXIT_LOCKED = 3


def _repo_dir(arg: str | None) -> Path:
    path = Path(arg) if arg else Path.cwd()
    if not (path / "dvc.yaml").is_file():
        raise SystemExit(f"geosgm: {path} is not a geosgm project (no dvc.yaml)")
    return path


def _dvc_executable() -> str:
    from pipeline.query.bundle import dvc_executable

    found = dvc_executable()
    if found is None:
        raise SystemExit("geosgm: the dvc executable was not found next to python or on PATH")
    return found


def _first_targets(repo: Path) -> list[str]:
    """The fast pass: the incumbent ``kde`` evaluated and mapped on every catalogue (seconds per
    stage), so the first table and maps exist minutes into a long run. Empty for a project
    whose params do not evaluate or map ``kde`` (nothing to run first)."""
    from pipeline.cli.query import params_sections

    if not (repo / "params.yaml").is_file():
        return []
    sections = params_sections(repo, "ingest", "evaluate", "maps")
    catalogues = list(sections["ingest"].get("catalogues") or {})
    targets = []
    if "kde" in (sections["evaluate"].get("models") or []):
        targets += [f"evaluate@{c}-kde" for c in catalogues]
    if "kde" in (sections["maps"].get("models") or []):
        targets += [f"maps@{c}-kde" for c in catalogues]
    return targets


def _cmd_run(args: argparse.Namespace) -> int:
    repo = _repo_dir(args.repo)
    if args.first and args.targets:
        print("geosgm run: --first takes no targets (it picks the kde stages)", file=sys.stderr)
        return EXIT_USAGE
    base = [_dvc_executable(), "repro"]
    if args.force:
        base.append("--force")
    passes: list[tuple[str, list[str]]] = []
    first = _first_targets(repo) if args.first or not args.targets else []
    if args.first and not first:
        print("geosgm run: --first: params.yaml evaluates and maps no kde", file=sys.stderr)
        return EXIT_USAGE
    if first:
        passes.append(("first pass (the kde incumbent: densities and maps)", first))
    if not args.first:
        passes.append(("full run" if not args.targets else "targets", list(args.targets)))
    from pipeline.flows.server import local_prefect_server
    from pipeline.process_group import supervise

    start, run_start = time.perf_counter(), time.monotonic()
    with supervise() as sup, local_prefect_server(repo):
        env = dict(os.environ)
        # DVC runs stage commands through the shell: `python` must be this environment's.
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        for label, targets in passes:
            cmd = base + targets
            print(f"geosgm run: {label}: " + " ".join(cmd[1:]), flush=True)
            # Its own session: Ctrl-C reaches dvc's tree once, forwarded by the supervisor.
            rc = _repro_with_progress(sup, cmd, repo, env, run_start)
            elapsed = time.perf_counter() - start
            if rc != 0:
                print(
                    f"geosgm run: dvc repro failed with exit code {rc} ({label})", file=sys.stderr
                )
                return EXIT_FAILED
            if label.startswith("first pass"):
                print(
                    f"geosgm run: first results after {elapsed / 60:.1f} min: kde maps in "
                    "reports/maps/<catalogue>/kde.png, metrics in reports/metrics/<catalogue>/"
                    "kde.json; `geosgm density <catalogue> kde LAT LON` works now",
                    flush=True,
                )
                _print_target_metrics(repo, targets)
    print(f"geosgm run: dvc repro took {time.perf_counter() - start:.0f} s", flush=True)
    if args.first:
        return EXIT_OK
    if args.targets:
        return _print_target_metrics(repo, args.targets)
    return _cmd_metrics(args)


RUN_TIMINGS = Path("reports") / "run_timings.json"
"""Seconds each stage took in the last runs (``geosgm run`` reads it for ETAs, then updates it)."""


def _planned_stages(cmd: Sequence[str], repo: Path, env: dict[str, str]) -> list[str]:
    """The stages ``cmd`` (a ``dvc repro [--force] [TARGET...]``) will run, from ``dvc dag
    --dot`` and ``dvc status --json``; ``[]`` when either fails (the run then reports why)."""
    import subprocess

    from pipeline.flows.run_progress import parse_dag_dot, planned_stages

    procs = [  # both at once: each is seconds of dvc start-up
        subprocess.Popen(
            [cmd[0], *args],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for args in (("dag", "--dot"), ("status", "--json"))
    ]
    outputs = [p.communicate()[0] for p in procs]  # (reading first: a full pipe blocks)
    dot, status = (o if p.returncode == 0 else None for p, o in zip(procs, outputs, strict=True))
    if dot is None or status is None:
        return []
    try:
        changed = list(json.loads(status))
    except json.JSONDecodeError:
        return []
    nodes, edges = parse_dag_dot(dot)
    targets = [a for a in cmd[2:] if not a.startswith("-")]
    return planned_stages(nodes, edges, changed, targets, force="--force" in cmd)


def _repro_with_progress(
    sup: Any, cmd: list[str], repo: Path, env: dict[str, str], run_start: float
) -> int:
    """Run ``dvc repro`` under ``sup`` with one progress line per stage (ETA for the stage and
    the run, reminders after 30 s of silence); record each stage's seconds for the next ETA."""
    import threading

    from pipeline.flows.run_progress import RunProgress, read_timings, write_timings

    planned = _planned_stages(cmd, repo, env)
    progress = RunProgress(planned, read_timings(repo / RUN_TIMINGS), started_at=run_start)
    print(f"geosgm run: {len(planned)} stages to run", flush=True)
    stop = threading.Event()

    def remind() -> None:
        while not stop.wait(5.0):
            progress.tick()

    ticker = threading.Thread(target=remind, name="geosgm-run-progress", daemon=True)
    ticker.start()
    rc: int | None = None
    try:
        rc = sup.run(cmd, on_line=progress.line, cwd=repo, env=env)
    finally:
        stop.set()
        ticker.join()
        unfinished = progress.current if rc != 0 else None  # failed or stopped: not a timing
        measured = {k: v for k, v in progress.finish().items() if k != unfinished}
        if measured:
            write_timings(repo / RUN_TIMINGS, measured)
    return rc


def _print_target_metrics(repo: Path, targets: Sequence[str]) -> int:
    """After ``geosgm run TARGET...``: the test NLL of each ``evaluate@<cat>-<model>`` target."""
    for target in targets:
        name = target.rsplit(":", 1)[-1]
        if not name.startswith("evaluate@") or "-" not in name:
            continue
        catalogue, model = name.removeprefix("evaluate@").split("-", 1)
        path = repo / "reports" / "metrics" / catalogue / f"{model}.json"
        m = json.loads(path.read_text(encoding="utf-8"))
        n_seeds = len(m["per_seed"])
        # The ± of every table (summary, report, geosgm metrics): the 95% CI half-width.
        spread = f" ± {m['ci95']:.3f} (95% CI)" if n_seeds > 1 else ""  # one seed: none
        print(
            f"{catalogue}/{model}: test NLL {m['mean']:.3f}{spread} nats "
            f"({n_seeds} seed(s), {m['n_test']} test events; uniform = "
            f"{math.log(4 * math.pi):.3f})"
        )
    return EXIT_OK


def _read_summary(path: Path) -> dict[str, Any]:
    """``reports/summary.json``, parsed and checked against its schema.

    Raises:
        ValueError: Naming ``path`` and why it cannot be used (unreadable, not JSON, not a
            summary).
    """
    from pipeline.report.summary import validate_summary

    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    validate_summary(summary, str(path))
    return dict(summary)


def _cmd_metrics(args: argparse.Namespace) -> int:
    from pipeline.metrics import format_nll_table

    repo = _repo_dir(args.repo)
    summary_path = repo / "reports" / "summary.json"
    if not summary_path.is_file():
        print(f"geosgm metrics: {summary_path} does not exist yet (run `geosgm run`)")
        return EXIT_FAILED
    try:
        summary = _read_summary(summary_path)
    except ValueError as exc:
        print(f"geosgm metrics: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_FAILED
    print(format_nll_table(summary))
    return EXIT_OK


def _option_like_revision(*revs: str) -> str | None:
    """The first revision that begins with ``-`` (git would read it as an option), if any."""
    return next((rev for rev in revs if rev.startswith("-")), None)


def _cmd_compare(args: argparse.Namespace) -> int:
    bad = _option_like_revision(args.rev_a, args.rev_b)
    if bad is not None:  # before any git command sees it
        print(f"geosgm compare: revision {bad!r} begins with '-': not a revision", file=sys.stderr)
        return EXIT_USAGE
    from pipeline.report.revisions import compare_revisions

    repo = _repo_dir(args.repo)
    try:
        print(compare_revisions(repo, args.rev_a, args.rev_b))
    except (FileNotFoundError, ValueError) as exc:  # no summary there; a corrupt one
        print(f"geosgm compare: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_FAILED
    if args.maps is not None:
        return _write_change_maps(repo, args)
    return EXIT_OK


def _write_change_maps(repo: Path, args: argparse.Namespace) -> int:
    """``geosgm compare --maps DIR``: a Δ log-density map per committed map grid."""
    from pipeline.cli.query import params_sections
    from pipeline.report.map_changes import GRIDS_DIR, change_maps

    maps = params_sections(repo, "maps")["maps"]
    root = repo / GRIDS_DIR
    pairs = sorted((p.parent.name, p.stem) for p in root.glob("*/*.nc"))
    if not pairs:
        print(f"geosgm compare: no map grids in {root} (run the maps stage)", file=sys.stderr)
        return EXIT_FAILED
    changes = change_maps(
        repo,
        args.rev_a,
        args.rev_b,
        pairs,
        args.maps,
        naturalearth_dir=repo / str(maps.get("naturalearth_dir", "data/naturalearth")),
        display_upsample=int(maps.get("display_upsample", 1)),
    )
    for c in changes:
        if c.png is None:
            print(f"{c.catalogue}/{c.model}: no change map ({c.note})")
            continue
        print(f"{c.summary()} -> {c.png}")
    return EXIT_OK if any(c.png is not None for c in changes) else EXIT_FAILED


def _cmd_refresh(args: argparse.Namespace) -> int:
    # The lock first (one line, rc 3, nothing started), then the server and the flow.
    from pipeline.refresh.command import refresh_command

    return refresh_command(
        _repo_dir(args.repo), run_repro=not args.no_repro, lock_timeout=args.lock_timeout
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.flows.settings import apply_prefect_defaults
    from pipeline.process_group import Interrupted, supervise

    apply_prefect_defaults(_repo_dir(args.repo))
    from pipeline.refresh.deploy import serve

    # Prefect's runner handles SIGTERM itself while it serves (and exits 0); the supervisor
    # forwards SIGINT to the flow-run processes and stops whatever is left when serving ends.
    with supervise() as sup:
        serve(_repo_dir(args.repo), cron=args.cron)
    if sup.signum is not None:  # prefect.serve swallows the KeyboardInterrupt
        raise Interrupted(sup.signum, sup.killed)
    return EXIT_OK


def _query(verb: str, args: argparse.Namespace) -> int:
    """Run a query verb of :mod:`pipeline.cli.query`; its errors are one line and exit 1."""
    from pipeline.cli import query

    try:
        getattr(query, verb)(args, _repo_dir(args.repo))
    except query.query_errors() as exc:
        print(f"geosgm {verb}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_density(args: argparse.Namespace) -> int:
    return _query("density", args)


def _cmd_sample(args: argparse.Namespace) -> int:
    return _query("sample", args)


def _cmd_profile(args: argparse.Namespace) -> int:
    from pipeline.config.edit import ParamsEditError, apply_profile_text
    from pipeline.config.yaml_file import ParamsFileError, read_yaml_mapping

    repo = _repo_dir(args.repo)
    profile = repo / "profiles" / f"{args.name}.yaml"
    names = sorted(p.stem for p in (repo / "profiles").glob("*.yaml"))
    if args.name not in names or not profile.is_file():  # a usage error, like a bad choice
        known = ", ".join(names) or "none"
        print(f"geosgm profile: unknown profile {args.name!r} (profiles: {known})", file=sys.stderr)
        return EXIT_USAGE
    params_path = repo / "params.yaml"
    try:
        read_yaml_mapping(params_path)  # one-line errors for a missing or broken file
        old_text = params_path.read_text(encoding="utf-8")
        # Only the lines whose values change are rewritten: the user's comments stay.
        text = apply_profile_text(old_text, read_yaml_mapping(profile))
    except ParamsFileError as exc:
        print(f"geosgm profile: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ParamsEditError as exc:
        print(
            f"geosgm profile: cannot apply {profile.name} to {params_path}: {exc}", file=sys.stderr
        )
        return EXIT_FAILED
    if text == old_text:
        print(f"geosgm profile: params.yaml already has {profile.name}; nothing changed")
        return EXIT_OK
    from pipeline.atomic import atomic_write

    atomic_write(params_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), ".yaml")
    print(
        f"geosgm profile: applied {profile.name} to params.yaml (git checkout params.yaml "
        "to undo); now run `geosgm run`"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser of ``geosgm``."""
    parser = argparse.ArgumentParser(
        prog="geosgm",
        description=(
            "Score-based generative models of natural-hazard locations on the sphere: "
            "a DVC pipeline run by Prefect."
        ),
    )
    parser.add_argument("--repo", default=None, help="project directory (default: cwd)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline (dvc repro), then print the table")
    run.add_argument("targets", nargs="*", help="optional dvc stage names to reproduce")
    run.add_argument("--force", action="store_true", help="rerun stages even if up to date")
    run.add_argument(
        "--first",
        action="store_true",
        help="only the fast pass: fit, evaluate and map the kde incumbent on every catalogue",
    )
    run.set_defaults(func=_cmd_run, stops="dvc repro and the Prefect server")

    metrics = sub.add_parser("metrics", help="print the test-NLL table beside the published one")
    metrics.set_defaults(func=_cmd_metrics)

    compare = sub.add_parser("compare", help="compare the metrics of two git revisions")
    compare.add_argument("rev_a", help="older revision (e.g. HEAD~1)")
    compare.add_argument("rev_b", help="newer revision (e.g. HEAD or workspace)")
    compare.add_argument(
        "--maps",
        type=Path,
        metavar="DIR",
        help="also write DIR/<catalogue>/<model>.png: Δ log-density maps (B − A) from the "
        "map grids committed in git, with changes beyond twice the seed spread hatched",
    )
    compare.set_defaults(func=_cmd_compare)

    refresh = sub.add_parser(
        "refresh", help="ingest new files from data/incoming/, rerun what changed, record version"
    )
    refresh.add_argument("--no-repro", action="store_true", help="merge data only, skip dvc repro")
    refresh.add_argument(
        "--lock-timeout", type=float, default=0.0, help="seconds to wait for a running refresh"
    )
    refresh.set_defaults(func=_cmd_refresh, stops="dvc repro and the Prefect server")

    profile = sub.add_parser(
        "profile", help="apply a profile (profiles/NAME.yaml: smoke, paper) onto params.yaml"
    )
    profile.add_argument("name", help="profile name, e.g. paper or smoke")
    profile.set_defaults(func=_cmd_profile)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("catalogue", help="catalogue name, e.g. volcano")
        p.add_argument("model", help="model name, e.g. rsgm")
        p.add_argument("--seeds", default=None, help="trained seeds, e.g. 0,1 (default: all)")
        p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")

    density = sub.add_parser(
        "density", help="log-density and density per km² of a trained model at points"
    )
    model_args(density)
    density.add_argument("coords", nargs="*", metavar="LAT LON", help="points, degrees")
    density.add_argument("--points", default=None, help="CSV file with lat, lon columns")
    density.add_argument("--format", choices=("table", "csv"), default="table")
    density.add_argument("--csv", default=None, help="write the table to this CSV file")
    density.set_defaults(func=_cmd_density)

    sample = sub.add_parser("sample", help="draw a synthetic catalogue from a trained model")
    model_args(sample)
    sample.add_argument("-n", type=int, required=True, help="number of events")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--steps", type=int, default=None, help="walk steps (maps.sample_steps)")
    sample.add_argument("--out", required=True, help="output file: .csv, .parquet (GeoParquet)")
    sample.set_defaults(func=_cmd_sample)

    serve = sub.add_parser("serve", help="serve the refresh flow on a cron schedule (Prefect)")
    serve.add_argument("--cron", default="0 3 * * *", help="cron schedule (default: 03:00 daily)")
    serve.set_defaults(func=_cmd_serve, stops="the served flow runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geosgm`` console command.

    A reader that closes stdout early (``| head -1``) ends the command quietly with exit 0:
    stdout is flushed here, where a :class:`BrokenPipeError` can still be caught, instead of
    at interpreter exit (which would print "Exception ignored" and exit 120).
    """
    try:
        code = _dispatch(argv)
    except SystemExit:  # argparse: --help, usage errors
        _flush_stdout()
        raise
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_OK
    _flush_stdout()
    return code


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that the flush at interpreter exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real file descriptor (captured output)
        pass


def _dispatch(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the sub-command; an interrupt becomes its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BaseException as exc:
        from pipeline.process_group import interrupt_exit_code

        code = interrupt_exit_code(exc)
        if code is None:
            raise
        print(_interrupted_line(args, exc, code), file=sys.stderr, flush=True)
        return code


def _interrupted_line(args: argparse.Namespace, exc: BaseException, code: int) -> str:
    """The one stderr line of an interrupted command."""
    import signal

    from pipeline.process_group import Interrupted

    name = signal.Signals(code - 128).name if 128 < code < 128 + signal.NSIG else "signal"
    line = f"geosgm {args.command}: interrupted by {name}"
    stops = getattr(args, "stops", None)
    if stops:
        line += f": stopped {stops}"
    if isinstance(exc, Interrupted) and exc.killed:
        line += f" ({exc.killed} process(es) outlived the grace period and were killed)"
    return line
