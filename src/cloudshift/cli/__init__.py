"""The ``cloudshift`` command: parses arguments, calls the API, hands events and results to
:mod:`cloudshift.render`. Nothing more."""

from __future__ import annotations

import inspect
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from cloudshift.core.errors import CloudshiftError, Interrupted
from cloudshift.core.paths import jobs_root
from cloudshift.core.redact import describe, redact
from cloudshift.core.units import parse_size
from cloudshift.render.help import reflow

# The object mover (api, render and the SDK adapters behind them) is imported inside the
# commands that use it: `cloudshift db ...` and `cloudshift plan` start faster without it.

app = typer.Typer(
    name="cloudshift",
    help="Move data between clouds (object storage on S3, GCS, Azure Blob and local disk; "
         "PostgreSQL databases), resumably, verified end to end; price the move and the "
         "platforms first (plan, assess).\n\nLocations: s3://bucket/prefix, "
         "gs://bucket/prefix, az://container/prefix, mem://name/prefix, file:///path or a "
         "plain path.\n\nEvery move is a job with a journal: `cloudshift jobs` lists them "
         "(every kind), `cloudshift resume JOB` continues one.\n\nExit codes: 0 success, "
         "1 some items failed or differ, 2 usage or configuration error, 130 interrupted "
         "(resumable).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE: dict[str, Any] = {"debug": False}

Transfers = Annotated[int, typer.Option("--transfers", "-t", min=1, max=1024,
                                        help="Objects moved at once.")]
PartSize = Annotated[str, typer.Option(
    "--part-size", help="Objects larger than this go in parts of this size (min 5MiB). "
                        "Memory used is about transfers x part size (S3 uploads: "
                        "at most 160 MiB in all).")]
Include = Annotated[list[str] | None, typer.Option(
    "--include", help="Only keys matching this glob (repeatable). '*' stays within a "
                      "folder, '**' crosses folders, a pattern without '/' matches names "
                      "at any depth.")]
Exclude = Annotated[list[str] | None, typer.Option(
    "--exclude", help="Skip keys matching this glob (repeatable; wins over --include).")]
DryRun = Annotated[bool, typer.Option("--dry-run", "-n",
                                      help="Print what would be copied/deleted; change nothing.")]
Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout: one line per object "
                                                   "reported, the summary last.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="A line for every object.")]
SrcEndpoint = Annotated[str | None, typer.Option(
    "--src-endpoint", help="Endpoint URL for the source (e.g. http://localhost:9000), "
                           "overriding AWS_ENDPOINT_URL / STORAGE_EMULATOR_HOST / the "
                           "connection string.")]
DstEndpoint = Annotated[str | None, typer.Option("--dst-endpoint",
                                                 help="Endpoint URL for the destination.")]
JobDir = Annotated[str | None, typer.Option(
    "--job-dir", help="Where the job journal lives (default: $CLOUDSHIFT_HOME/jobs/JOB_ID, "
                      "CLOUDSHIFT_HOME defaulting to ~/.local/state/cloudshift).")]
Retries = Annotated[int, typer.Option("--retries", min=1, max=100,
                                      help="Attempts per object before it counts as failed.")]
BwLimit = Annotated[str | None, typer.Option(
    "--bwlimit", help="Cap the transfer rate, bytes per second, all transfers together "
                      "(e.g. 50MiB or 50MiB/s).")]
MaxRps = Annotated[float | None, typer.Option(
    "--max-rps", help="Cap HTTP requests per second to the cloud endpoints (all requests, "
                      "retries included).")]
Timeout = Annotated[float | None, typer.Option(
    "--timeout", help="Network timeout per request, seconds (default: the SDK's).")]
Progress = Annotated[bool | None, typer.Option("--progress/--no-progress",
                                               help="Progress bar (default: on a terminal).")]


def _print_version(wanted: bool) -> None:
    # Eager: it runs while the line is parsed, before click asks for a command.
    if wanted:
        from cloudshift import __version__

        typer.echo(f"cloudshift {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.",
                                          is_eager=True, callback=_print_version)] = False,
) -> None:
    _STATE["debug"] = debug


def _transfer(op: str, src: str, dst: str, *, delete: bool, transfers: int, part_size: str,
              include: list[str] | None, exclude: list[str] | None, dry_run: bool,
              json_out: bool, verbose: bool, src_endpoint: str | None,
              dst_endpoint: str | None, job_dir: str | None, retries: int,
              progress: bool | None, bwlimit: str | None, max_rps: float | None,
              timeout: float | None) -> None:
    from cloudshift import api
    from cloudshift.render.objects import print_transfer, reporter

    sink = reporter(op, json_lines=json_out, verbose=verbose or dry_run, progress=progress)
    fn = api.sync if op == "sync" else api.copy
    kwargs: dict[str, Any] = {"delete": delete} if op == "sync" else {}
    with sink:
        result = fn(src, dst, transfers=transfers, part_size=parse_size(part_size),
                    include=include or (), exclude=exclude or (), dry_run=dry_run,
                    retries=retries, job_dir=job_dir, src_endpoint=src_endpoint,
                    dst_endpoint=dst_endpoint, on_event=sink,
                    bwlimit=parse_size(bwlimit) if bwlimit else None, max_rps=max_rps,
                    timeout=timeout, **kwargs)
    print_transfer(result, json_out)
    raise typer.Exit(result.exit_code)


@app.command()
def copy(
    src: Annotated[str, typer.Argument(help="Where to copy from.")],
    dst: Annotated[str, typer.Argument(help="Where to copy to.")],
    transfers: Transfers = 16, part_size: PartSize = "16MiB", include: Include = None,
    exclude: Exclude = None, dry_run: DryRun = False, json_out: Json = False,
    verbose: Verbose = False, src_endpoint: SrcEndpoint = None,
    dst_endpoint: DstEndpoint = None, job_dir: JobDir = None, retries: Retries = 3,
    progress: Progress = None, bwlimit: BwLimit = None, max_rps: MaxRps = None,
    timeout: Timeout = None,
) -> None:
    """Copy every object under SRC that is missing or different under DST.

    Nothing under DST is ever deleted. Each object is hashed (MD5, CRC32C) while it streams
    and checked against what the source stored and what the destination reports. Running the
    same command again resumes from its journal without re-sending finished objects.

    Example: cloudshift copy s3://shop-assets/images gs://shop-assets/images --transfers 32
    """
    # The command's parameters are _transfer's, by name.
    _transfer("copy", delete=False, **locals())


@app.command()
def sync(
    src: Annotated[str, typer.Argument(help="The side to copy from.")],
    dst: Annotated[str, typer.Argument(help="The side to make identical to SRC.")],
    delete: Annotated[bool, typer.Option("--delete", help="Also delete objects under DST "
                                         "that SRC does not have.")] = False,
    transfers: Transfers = 16, part_size: PartSize = "16MiB", include: Include = None,
    exclude: Exclude = None, dry_run: DryRun = False, json_out: Json = False,
    verbose: Verbose = False, src_endpoint: SrcEndpoint = None,
    dst_endpoint: DstEndpoint = None, job_dir: JobDir = None, retries: Retries = 3,
    progress: Progress = None, bwlimit: BwLimit = None, max_rps: MaxRps = None,
    timeout: Timeout = None,
) -> None:
    """Make DST match SRC: copy what is missing or different; with --delete, remove extras.

    Without --delete nothing under DST is ever deleted. Try --dry-run first.

    Example: cloudshift sync ./exports az://archive/exports --delete --dry-run
    """
    _transfer("sync", **locals())


@app.command()
def verify(
    src: Annotated[str, typer.Argument(help="The reference side.")],
    dst: Annotated[str, typer.Argument(help="The side to check.")],
    download: Annotated[bool, typer.Option("--download", help="Hash the bytes of objects "
                                           "that have no comparable stored checksum "
                                           "(reads them).")] = False,
    transfers: Transfers = 16, include: Include = None, exclude: Exclude = None,
    json_out: Json = False, verbose: Verbose = False, src_endpoint: SrcEndpoint = None,
    dst_endpoint: DstEndpoint = None, progress: Progress = None,
) -> None:
    """Compare SRC and DST object by object; exit 0 only when everything matches.

    Reports missing, extra and mismatched objects, and the level at which each object was
    verified: checksum (same MD5/CRC32C), size (no comparable checksum stored: use
    --download), none (missing or unreadable). Local and in-memory sides are always hashed.
    """
    from cloudshift import api
    from cloudshift.render.objects import print_verify, reporter

    sink = reporter("verify", json_lines=json_out, verbose=verbose, progress=progress)
    with sink:
        result = api.verify(src, dst, download=download, transfers=transfers,
                            include=include or (), exclude=exclude or (),
                            src_endpoint=src_endpoint, dst_endpoint=dst_endpoint,
                            on_event=sink)
    print_verify(result, json_out)
    raise typer.Exit(result.exit_code)


@app.command("ls")
def ls_cmd(
    uri: Annotated[str, typer.Argument(help="What to list.")],
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Endpoint URL.")] = None,
    include: Include = None, exclude: Exclude = None, json_out: Json = False,
) -> None:
    """List objects under URI: size, modified time, stored checksums, key."""
    from cloudshift import api
    from cloudshift.render.objects import print_listing

    print_listing(api.ls(uri, endpoint=endpoint, include=include or (), exclude=exclude or ()),
                  json_out)


@app.command()
def resume(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="Job id (as `cloudshift jobs` lists it), or its "
                                            "folder.")],
    transfers: Transfers = 16, part_size: PartSize = "16MiB", json_out: Json = False,
    verbose: Verbose = False, retries: Retries = 3, progress: Progress = None,
    bwlimit: BwLimit = None, max_rps: MaxRps = None, timeout: Timeout = None,
) -> None:
    """Continue an interrupted job of any kind from its journal.

    An object copy or sync (copy-..., sync-...) runs its command again and skips the
    objects already done; --transfers, --part-size, --retries, --bwlimit, --max-rps and
    --timeout change how it runs (not what it copies).

    A database copy (db-...) runs its db copy again with the options it was started with,
    keeping the finished tables and key ranges; the DSNs in its journal carry no password,
    so give it as PGPASSWORD or in ~/.pgpass. Of the options above it takes --transfers
    (its parallel workers, as db copy --jobs) and --json.

    Example: cloudshift resume copy-3f2a9c1d0b7e --transfers 32
    """
    from cloudshift.jobs.journal import find_job, peek

    info = peek(find_job(job))

    from cloudshift.kinds import kind_of
    from cloudshift.render.views import view_for

    kind = kind_of(info)
    overrides = _given(ctx, {"transfers": transfers, "retries": retries, "max_rps": max_rps,
                             "timeout": timeout, "part_size": part_size, "bwlimit": bwlimit})
    view = view_for(kind.name)
    try:
        with view.sink("resume", json_out, verbose, progress) as sink:
            result = kind.resume(info, overrides, sink)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: run `cloudshift resume {info.job_id}` again to "
                          "continue; what finished is kept") from None
    view.result(result, json_out)
    raise typer.Exit(result.exit_code)


def _given(ctx: typer.Context, values: Mapping[str, Any]) -> dict[str, Any]:
    """The options typed on the command line (a kind keeps its own for the rest), sizes
    parsed into bytes."""
    def typed(name: str) -> bool:
        source = ctx.get_parameter_source(name)   # click's ParameterSource (typer vendors it)
        return source is not None and source.name != "DEFAULT"

    given = {name: value for name, value in values.items() if typed(name)}
    for name in ("part_size", "bwlimit"):
        if given.get(name) is not None:
            given[name] = parse_size(given[name])
    return given


@app.command()
def jobs(
    json_out: Annotated[bool, typer.Option(
        "--json", help="JSON Lines on stdout: one line per job.")] = False,
    html: Annotated[str | None, typer.Option(
        "--html", metavar="FILE", help="Also write the jobs, each one's runs and the figures "
                                       "of its last run, as one self-contained HTML page to "
                                       "FILE.")] = None,
) -> None:
    """List the jobs on this machine, of every kind, with their last run.

    Object copies and syncs, database copies: each job's kind, command, last status, progress
    (objects or key ranges by state), source and destination. `cloudshift resume JOB`
    continues any of them.
    """
    from pathlib import Path

    from cloudshift.kinds import list_jobs
    from cloudshift.render.jobs import print_jobs

    page = Path(html) if html is not None else None
    if page is not None:
        from cloudshift.render.jobs_html import check_target

        check_target(page)
    rows = list_jobs()
    print_jobs(rows, json_out, jobs_root())
    if page is not None:
        from cloudshift.render.jobs_html import write_jobs_html

        write_jobs_html(page, rows, jobs_root())
        typer.echo(f"wrote {html} ({len(rows)} job{'' if len(rows) == 1 else 's'})", err=True)


@app.command()
def demo(
    objects: Annotated[int, typer.Option("--objects", min=10, max=100_000,
                                         help="How many objects to generate.")] = 1000,
    large_mib: Annotated[int, typer.Option("--large-mib", min=0, max=4096,
                                           help="Size of the one large object (MiB).")] = 48,
    transfers: Transfers = 16, progress: Progress = None,
) -> None:
    """Migrate a small shop's S3 bucket to Google Cloud Storage, on embedded servers.

    Starts an S3 server (moto) and a GCS emulator inside this process, fills the S3 bucket
    with product images, order logs and one large backup, copies it all to GCS with a
    progress bar, verifies every object, and prints a summary. No cloud account needed.
    """
    from cloudshift.demo import run_demo

    raise typer.Exit(run_demo(objects=objects, large_mib=large_mib, transfers=transfers,
                              progress=progress))


def _register_commands() -> None:
    from cloudshift.cli.assess import register as register_assess
    from cloudshift.cli.db import register as register_db
    from cloudshift.cli.plan import register as register_cost

    register_cost(app)
    register_db(app)
    register_assess(app)


def _reflow_help(group: typer.Typer) -> None:
    """Every command's help, in every group, reflowed once (render/help.py): paragraphs wrap
    at the terminal's width instead of where the docstring's lines break."""
    for command in group.registered_commands:
        text = command.help if command.help is not None else inspect.getdoc(command.callback)
        if text:
            command.help = reflow(text)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            info = sub.typer_instance.info
            if isinstance(info.help, str):
                info.help = reflow(info.help)
            _reflow_help(sub.typer_instance)


_register_commands()
_reflow_help(app)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_traceback(exc: BaseException) -> None:
    # Even a debugging traceback must not show a key: SDK messages can carry signed URLs.
    sys.stderr.write(redact("".join(traceback.format_exception(exc))))


def main() -> None:
    """Entry point: one line and a non-zero exit for every error, a traceback only on --debug."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    argv = sys.argv[1:]
    debug = "--debug" in argv or os.environ.get("CLOUDSHIFT_DEBUG") == "1"
    # --debug is accepted anywhere on the line, not only before the command.
    args = [a for a in argv if a != "--debug"]
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting.
        rc = app(args=args, prog_name="cloudshift", standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Interrupted as exc:
        typer.echo(f"cloudshift: {describe(exc)}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # The journal is committed and closed. Worker threads stuck in a network call would
        # make a normal exit wait for them; a user who pressed Ctrl-C wants the prompt back.
        os._exit(exc.exit_code)
    except CloudshiftError as exc:
        if debug:
            _print_traceback(exc)
        typer.echo(f"cloudshift: error: {describe(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("cloudshift: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug or an unmapped SDK error: still one line
        # Usage errors from the parser (typer vendors click, so match by behaviour).
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if type(exc).__name__ == "Abort":
            sys.exit(130)
        if debug:
            _print_traceback(exc)
        typer.echo(f"cloudshift: error: {type(exc).__name__}: {describe(exc)} "
                   "(rerun with --debug for details)", err=True)
        sys.exit(2)

