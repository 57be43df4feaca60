"""The `bordermon` command line (names and behaviour fixed by the operator contract)."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from bordermon import __version__
from bordermon.config import Resolved, Settings
from bordermon.errors import BordermonError

F = TypeVar("F", bound=Callable[..., Any])


# The event logs a command reads (JSON lines, gzip or not): replay, backtest, backfill, report.
log_files = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))


def runs_to_completion(command: F) -> F:
    """For commands that run over logs to the end (backtest, backfill, report): SIGTERM and a
    closed terminal interrupt them as Ctrl-C does (`bordermon.stopping.stop_by_exception`)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from bordermon.stopping import stop_by_exception

        stop_by_exception()
        return command(*args, **kwargs)

    return run  # type: ignore[return-value]


def resume_option(help_text: str) -> Callable[[F], F]:
    """--resume N, shared by the publishing commands (they print N when stopped or failing)."""
    return click.option("--resume", type=click.IntRange(min=0), default=0, metavar="N", help=help_text)


def current_settings() -> Settings:
    """The settings the group resolved for this invocation (from the click context)."""
    resolved: Resolved = click.get_current_context().find_root().obj
    return resolved.settings


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"bordermon: error: {message}", err=True)
    sys.exit(code)


def fail_at_once(message: str, code: int = 2) -> NoReturn:
    """`fail` for a stopped Faust worker: exit without the interpreter's shutdown, during which
    Faust's consumer thread, still running, printed tracebacks after the reason (the reason must
    be the last line on-call reads)."""
    click.echo(f"bordermon: error: {message}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bordermon")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS].")
@click.option("--checkpoints", type=click.Path(dir_okay=False), help="Registry YAML [env BORDERMON_CHECKPOINTS].")
@click.option("--web-port", type=click.IntRange(1, 65535), help="Worker HTTP port [env BORDERMON_WEB_PORT].")
@click.option("--web-host", help="Worker HTTP bind address [env BORDERMON_WEB_HOST].")
@click.option("--alertmanager-url", help="Alertmanager base URL [env BORDERMON_ALERTMANAGER_URL].")
def cli(
    config_path: str | None,
    bootstrap_servers: str | None,
    checkpoints: str | None,
    web_port: int | None,
    web_host: str | None,
    alertmanager_url: str | None,
) -> None:
    """bordermon: live monitoring of border checkpoints (Kafka -> Faust -> Prometheus).

    Settings come from these flags, then the environment, then a TOML config file (--config,
    $BORDERMON_CONFIG, ./bordermon.toml or ~/.config/bordermon/config.toml); `bordermon config`
    prints the result and where each value came from.

    \b
    Quick start:
      bordermon demo                      # everything on this machine, with a live view
      bordermon status --watch            # what a running worker sees
    """
    from bordermon.config import resolve
    from bordermon.logs import setup_logging

    # A one-shot command says what went wrong in one line of its own, so the Kafka clients' retry
    # errors stay silent; long-running commands call setup_logging("INFO") and hear them again.
    setup_logging("WARNING", libraries=logging.CRITICAL)
    flags = {
        "bootstrap_servers": bootstrap_servers,
        "checkpoints_path": checkpoints,
        "web_port": web_port,
        "web_host": web_host,
        "alertmanager_url": alertmanager_url,
    }
    # Resolved once, here; every command takes its settings from the context.
    click.get_current_context().obj = resolve(flags, os.environ, config_path)


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--registry", "print_registry", is_flag=True, help="Print the effective checkpoint registry YAML.")
@click.pass_obj
def show_config(resolved: Resolved, as_json: bool, print_registry: bool) -> None:
    """Print the effective settings and where each came from (flag, env, config file, default).

    \b
    Examples:
      bordermon config
      bordermon --web-port 7000 config
      BORDERMON_CONFIG=prod.toml bordermon config --json
      bordermon config --registry > my-checkpoints.yaml     # a registry to edit
    """
    import json as jsonlib

    from bordermon.config import OPTIONS

    settings, sources = resolved.settings, resolved.sources
    if print_registry:
        from bordermon.registry import registry_text

        click.echo(registry_text(settings.checkpoints_path), nl=False)
        return
    rows = [(o.field, getattr(settings, o.field), sources[o.field], o.env, o.help) for o in OPTIONS]
    if as_json:
        click.echo(jsonlib.dumps({f: {"value": v, "source": src, "env": env} for f, v, src, env, _ in rows}, indent=2))
        return
    click.echo(f"config file: {resolved.config_file or 'none'}")
    click.echo(f"kafka security: {settings.security.describe()} (BORDERMON_KAFKA_* env; secrets never printed)")
    width = max(len(r[0]) for r in rows)
    for field_name, value, source, env, help_text in rows:
        click.echo(f"{field_name:<{width}}  {value!s:<24} {source:<28} {help_text} [{env}]")


@cli.command()
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def broker(port: int, host: str) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) in the foreground.

    \b
    Example:
      bordermon broker --port 9092
    """
    from bordermon.broker import broker_command
    from bordermon.ports import check_port_free

    check_port_free(host, port)
    command = broker_command(host, port)
    click.echo(f"bordermon: embedded broker on {host}:{port} (in memory; data is lost on exit)", err=True)
    os.execv(command[0], command)


@cli.command()
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING"]))
def worker(log_level: str) -> None:
    """Run one stream worker; several workers form one consumer group.

    Creates border.events, border.alerts and border.deadletter when missing, serves
    Prometheus metrics on http://BORDERMON_WEB_HOST:BORDERMON_WEB_PORT/metrics.

    \b
    Example:
      KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 bordermon worker
    """
    from bordermon.config import CHANGELOG_TOPIC
    from bordermon.kafka import (
        broker_traits,
        check_group_access,
        ensure_topics,
        ensure_worker_topics,
        partition_count_changed,
    )
    from bordermon.logs import logging_config
    from bordermon.webconfig import load_web_config
    from streams.worker.registrycache import load_registry_kept

    settings = current_settings()
    registry = load_registry_kept(settings.checkpoints_path, settings.worker_data_dir)
    web_config = load_web_config(settings.web_config)
    # With the changelog: a layout that no longer lines up is refused here, in one line.
    partitions = ensure_worker_topics(settings, CHANGELOG_TOPIC)
    broker = broker_traits(settings)
    if broker.kraft:  # the consumer would retry a refused group forever, silently
        check_group_access(settings)
    from bordermon.ports import check_port_free

    check_port_free(settings.web_host, settings.web_port, "worker web server (BORDERMON_WEB_PORT)")

    import faust

    from streams.worker.app import Pipeline, tune_gc

    pipeline = Pipeline(settings, registry, partitions, broker, web_config)
    tune_gc()
    pipeline.begin_warm_start()
    try:
        faust.Worker(
            pipeline.app, loglevel=log_level, quiet=True, logging_config=logging_config(log_level)
        ).execute_from_commandline()
    except SystemExit as exc:  # Faust's worker exits through SystemExit, on success too
        if exc.code in (0, None):
            raise
        # Faust's assignor fails with a bare AssertionError when the topics changed partition
        # count under it (a reset in-memory broker auto-creates them with its default): say so.
        now = ensure_topics(settings)
        if now != partitions:
            fail_at_once(partition_count_changed(now, partitions))
        raise


@cli.command()
@log_files
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Event-time speed-up: 60 plays one hour in one minute. [default: 1]",
)
@click.option("--max-speed", is_flag=True, help="No pacing: publish as fast as the broker takes it.")
@click.option("--from", "time_from", default=None, metavar="TS", help="Only events at or after this RFC 3339 time.")
@click.option("--to", "time_to", default=None, metavar="TS", help="Only events before this RFC 3339 time.")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="ID", help="Only this checkpoint (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
@resume_option("Skip the first N lines (all files, in order): the point a stopped or failed replay printed.")
def replay(
    files: tuple[str, ...],
    speed: float | None,
    max_speed: bool,
    time_from: str | None,
    time_to: str | None,
    checkpoints: tuple[str, ...],
    quiet: bool,
    resume: int,
) -> None:
    """Publish JSONL event logs (.gz too) to border.events verbatim, in file order.

    Every line is published, even one that is not JSON (the pipeline decides what is bad);
    with --from/--to/--checkpoint only the valid events that match are.

    \b
    Examples:
      bordermon replay day1.jsonl.gz day2.jsonl.gz --speed 3600
      bordermon replay events.jsonl --max-speed
      bordermon replay surge.jsonl.gz --from 2022-09-21T00:00:00Z --to 2022-09-24T00:00:00Z \\
          --checkpoint syrym --checkpoint taskala --speed 3600
    """
    from bordermon.timeutil import parse_rfc3339
    from producers.replay import Selection
    from producers.replay import replay as run_replay

    if max_speed and speed is not None:
        raise click.UsageError("--speed and --max-speed are mutually exclusive")
    bounds = []
    for name, text in (("--from", time_from), ("--to", time_to)):
        try:
            bounds.append(None if text is None else parse_rfc3339(text))
        except ValueError:
            raise click.UsageError(f"{name}: {text!r} is not an RFC 3339 time with an offset") from None
    if bounds[0] is not None and bounds[1] is not None and bounds[0] >= bounds[1]:
        raise click.UsageError("--from must be before --to")
    selection = Selection(bounds[0], bounds[1], frozenset(checkpoints) if checkpoints else None)
    from bordermon.stopping import StopFlag

    stop = StopFlag().install()
    summary = run_replay(
        files, current_settings(), None if max_speed else (speed or 1.0), selection=selection, resume=resume, stop=stop
    )
    click.echo(summary.line())
    if not quiet and summary.per_checkpoint:
        click.echo("lines sent per checkpoint:")
        click.echo("\n".join(summary.per_checkpoint_lines()))


@cli.command()
@click.option("--scenario", required=True, help="baseline | mobilization-2022 | lane-failure | holiday")
@click.option("--days", type=click.IntRange(1, 3650), default=None, help="Length of the run [scenario default].")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same events.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write JSONL (.gz compresses).")
@click.option("--kafka", is_flag=True, help="Publish to border.events instead of writing a file.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --kafka: event-time speed-up (3600 = an hour a second) [default: as fast as possible].",
)
@click.option(
    "--start",
    "start",
    default=None,
    metavar="DATE",
    help="Start on this day (YYYY-MM-DD, UTC) with empty queues instead of the scenario's first day.",
)
@click.option(
    "--fast-until",
    "fast_until",
    default=None,
    metavar="TS",
    help="With --kafka --speed: publish events before this RFC 3339 time at once, then pace.",
)
@resume_option("With --kafka: skip the first N events (the point a stopped or failed run printed).")
def simulate(
    scenario: str,
    days: int | None,
    seed: int,
    out: str | None,
    kafka: bool,
    speed: float | None,
    start: str | None,
    fast_until: str | None,
    resume: int,
) -> None:
    """Synthetic traffic from a seeded discrete-event simulation of every checkpoint.

    \b
    Scenarios:
      baseline           ordinary traffic on the bundled registry (7 days)
      mobilization-2022  14 Sep - 30 Nov 2022, calibrated to the official figures
      lane-failure       Zhana Zhol loses all lanes for two hours on 2 Aug 2022 (2 days)
      holiday            four ordinary weeks, then Nauryz 2023's peak (35 days)

    With --out, the labelled surges (onset and end per checkpoint and direction) are
    written beside the log: x.jsonl.gz -> x.surges.json.

    \b
    Examples:
      bordermon simulate --scenario mobilization-2022 --out surge.jsonl.gz
      bordermon simulate --scenario lane-failure --kafka --speed 3600
    """
    from rich.console import Console

    from bordermon.registry import load_registry
    from producers.publisher import Publisher
    from producers.scenarios import SCENARIOS
    from producers.simulate import run_simulation

    if (out is None) == (not kafka):
        raise click.UsageError("give exactly one of --out FILE or --kafka")
    if speed is not None and not kafka:
        raise click.UsageError("--speed only applies with --kafka")
    if scenario not in SCENARIOS:
        raise click.UsageError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    start_at = None
    if start is not None:
        from datetime import UTC, datetime

        try:
            start_at = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise click.UsageError(f"--start: {start!r} is not a date like 2022-09-21") from None
    fast = None
    if fast_until is not None:
        from bordermon.timeutil import parse_rfc3339

        if speed is None:
            raise click.UsageError("--fast-until only applies with --kafka --speed")
        try:
            fast = parse_rfc3339(fast_until)
        except ValueError:
            raise click.UsageError(f"--fast-until: {fast_until!r} is not an RFC 3339 time with an offset") from None
    settings = current_settings()
    registry = load_registry(settings.checkpoints_path)
    from bordermon.stopping import StopFlag

    stop = StopFlag().install()
    publisher = Publisher(settings, speed, stop, fast_until=fast) if kafka else None
    try:
        line = run_simulation(
            scenario, registry, days, seed, out, publisher, Console(stderr=True), start_at=start_at, resume=resume
        )
    finally:
        if publisher is not None:
            publisher.close()
    click.echo(line)


@cli.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Archive directory.")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1024),
    default=64 * 1024 * 1024,
    show_default=True,
    help="Rotate after this many uncompressed bytes (files also rotate every hour and when idle).",
)
@click.option(
    "--idle-close",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Close (commit) the current file after this many seconds without new messages.",
)
def record(out: str, max_bytes: int, idle_close: float) -> None:
    """Archive border.events into compressed JSONL files that `bordermon replay` accepts.

    Resumes where it stopped (DIR/manifest.json); loses and duplicates nothing across restarts.
    SIGTERM or Ctrl-C closes the current file and exits 0.

    \b
    Examples:
      bordermon record --out archive/
      bordermon replay archive/*.jsonl.gz --max-speed     # into a fresh broker
    """
    from bordermon.logs import setup_logging
    from producers.record import Recorder

    setup_logging("INFO")
    click.echo(Recorder(current_settings(), out, max_bytes, idle_close).run())


@cli.command()
@click.option("--url", default=None, help="Worker metrics URL [http://127.0.0.1:$BORDERMON_WEB_PORT/metrics].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
@click.option("--all", "show_all", is_flag=True, help="Include checkpoints with no events yet.")
def status(url: str | None, as_json: bool, watch: bool, show_all: bool) -> None:
    """Show what a running worker sees: lanes, queues, waits, net flows, alerts.

    \b
    Examples:
      bordermon status
      bordermon status --watch
      bordermon status --json | jq '.checkpoints.syrym'
    """
    import json as jsonlib

    from rich.console import Console, Group
    from rich.live import Live

    from shell.liveview import checkpoint_table, fetch_metrics, parse_snapshot, snapshot_json, totals_table

    url = url or f"http://127.0.0.1:{current_settings().web_port}/metrics"

    def snap():  # type: ignore[no-untyped-def]
        try:
            return parse_snapshot(fetch_metrics(url))
        except OSError as exc:
            raise BordermonError(f"cannot read {url}: {getattr(exc, 'reason', exc)}; is a worker running?") from None

    if as_json:
        click.echo(jsonlib.dumps(snapshot_json(snap()), indent=2, sort_keys=True))
        return
    console = Console()
    if not watch:
        current = snap()
        console.print(checkpoint_table(current, only_active=not show_all), totals_table(current))
        return
    from bordermon.stopping import StopFlag

    stop = StopFlag().install()
    with Live(console=console, refresh_per_second=2, screen=False) as live:
        while not stop.requested:
            current = snap()
            live.update(Group(checkpoint_table(current, only_active=not show_all), totals_table(current)))
            stop.sleep(1)


@cli.command("webhook-log")
@click.option("--port", default=9095, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
def webhook_log(port: int, host: str) -> None:
    """Receive Alertmanager webhooks and print each notification as a JSON line.

    \b
    Example:
      bordermon webhook-log --port 9095 | jq '.notification.alerts[].labels'
    """
    from bordermon.ports import check_port_free
    from shell.webhooklog import serve

    check_port_free(host, port, "webhook receiver")
    serve(host, port)


@cli.group()
def dashboards() -> None:
    """Grafana dashboards (built as code in dashboards/)."""


@dashboards.command("push")
@click.option("--grafana-url", required=True, help="Base URL of Grafana, e.g. https://grafana.example.org")
@click.option("--folder-uid", default="bordermon", show_default=True, help="Folder to create or update.")
def dashboards_push(grafana_url: str, folder_uid: str) -> None:
    """Upload the bordermon dashboards to an existing Grafana.

    Credentials from the environment: GRAFANA_TOKEN (a service account token), or
    GRAFANA_USER and GRAFANA_PASSWORD.

    \b
    Example:
      GRAFANA_TOKEN=glsa_... bordermon dashboards push --grafana-url https://grafana.example.org
    """
    from dashboards.push import push

    for url in push(grafana_url, folder_uid):
        click.echo(url)


@cli.command()
@log_files
@click.option(
    "--compare",
    "compare",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="REGISTRY",
    help="Another registry YAML to run side by side (repeatable).",
)
@click.option(
    "--alerts-out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write every alert transition of the effective registry as JSON lines (the border.alerts messages).",
)
@runs_to_completion
def backtest(files: tuple[str, ...], compare: tuple[str, ...], alerts_out: str | None) -> None:
    """Run the pipeline's rules over event logs in process (no broker), per registry.

    Per checkpoint and direction: warnings and criticals fired, hours firing, pages (critical
    notifications, re-sent hourly while firing) and the median lead time from the warning to the
    critical. The effective registry (BORDERMON_CHECKPOINTS or the bundled one) comes first.

    \b
    Examples:
      bordermon backtest surge.jsonl.gz
      bordermon backtest surge.jsonl.gz --compare stricter.yaml --alerts-out alerts.jsonl
    """
    import time

    from rich.console import Console

    from bordermon.logfiles import check_exist, log_blocks
    from bordermon.registry import load_registry
    from shell.backtestview import backtest_table
    from streams.offline.backtest import Backtest, run_backtests

    check_exist(files)
    settings = current_settings()
    keep = alerts_out is not None
    runs = [
        Backtest(
            settings.checkpoints_path or "bundled registry", load_registry(settings.checkpoints_path), keep_alerts=keep
        )
    ]
    runs += [Backtest(path, load_registry(path)) for path in compare]
    try:
        out = open(alerts_out, "wb") if alerts_out else None  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BordermonError(f"{alerts_out}: {exc.strerror or exc}") from None
    started = time.monotonic()
    read = lambda progress: log_blocks(files, what="backtest", show=progress)  # noqa: E731
    try:
        count, runs = run_backtests(read, runs, shards=os.cpu_count() or 1)
        if out is not None:
            out.writelines(value + b"\n" for _, value in runs[0].alerts)
    finally:
        if out is not None:
            out.close()
    seconds = time.monotonic() - started
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a pipe or file gets whole rows, not 80 columns
    console.print(backtest_table(runs))
    click.echo(
        f"backtest: {count:,} lines in {seconds:.1f} s ({count / max(seconds, 1e-9):,.0f} lines/s); "
        f"accepted {runs[0].accepted:,}, rejected {runs[0].rejected:,}"
    )


@cli.command()
@log_files
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory for the TSDB blocks.")
@click.option(
    "--step",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds of event time between samples.",
)
@runs_to_completion
def backfill(files: tuple[str, ...], out: str, step: float) -> None:
    """Write Prometheus TSDB blocks of the pipeline's metrics at event time.

    Every series a worker exports, sampled every STEP seconds of event time from the first event
    (rounded down to a multiple of STEP) to one step past the last, through Prometheus's own
    `promtool tsdb create-blocks-from openmetrics`. Point a Prometheus at DIR (see the README:
    mind its retention) and the dashboards show the log at its real dates.

    \b
    Example:
      bordermon backfill surge.jsonl.gz --out history/ --step 300
      prometheus --storage.tsdb.path=history/ --storage.tsdb.retention.time=100y
    """
    import time

    from bordermon.logfiles import check_exist, log_lines
    from bordermon.registry import load_registry
    from streams.offline.backfill import backfill as run_backfill

    check_exist(files)
    settings = current_settings()
    registry = load_registry(settings.checkpoints_path)
    started = time.monotonic()
    samples, times, chunks = run_backfill(registry, log_lines(files, what="backfill"), out, step)
    click.echo(
        f"backfill: {samples:,} samples at {times:,} times ({step:g} s apart) in {chunks} day(s) "
        f"written to {out} in {time.monotonic() - started:.1f} s"
    )


@cli.command()
@log_files
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--title", default=None, help="Page title [the log's file name and period].")
@runs_to_completion
def report(files: tuple[str, ...], out: str, title: str | None) -> None:
    """Write one self-contained HTML page about event logs (no network needed to view it).

    Daily entered / left / stayed by citizenship, waits per checkpoint over time against their
    thresholds, an alert timeline, the most congested checkpoints, rejected input by reason and
    a map of checkpoints coloured by their worst wait; computed by the pipeline's own processor.

    \b
    Example:
      bordermon report surge.jsonl.gz --out surge.html
    """
    import time

    from bordermon.logfiles import check_exist, log_lines
    from bordermon.registry import load_registry
    from dashboards.report import collect, event_span, render, report_step

    check_exist(files)
    settings = current_settings()
    registry = load_registry(settings.checkpoints_path)
    started = time.monotonic()
    span = event_span(log_lines(files, what="scanning"))
    step = report_step(span[1] - span[0]) if span else 3600.0
    data = collect(registry, log_lines(files, what="report"), step)
    name = title or f"bordermon report: {', '.join(os.path.basename(f) for f in files)}"
    try:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(render(data, registry, name))
    except OSError as exc:
        raise BordermonError(f"{out}: {exc.strerror or exc}") from None
    seconds = time.monotonic() - started
    click.echo(
        f"report: {data.lines:,} lines, {len(data.times):,} samples ({step / 60:g} min apart), "
        f"{len(data.intervals)} alert(s) -> {out} ({os.path.getsize(out) / 1e6:.1f} MB) in {seconds:.1f} s"
    )


@cli.command()
@click.option("--scenario", default="mobilization-2022", show_default=True, help="Simulator scenario.")
@click.option("--start", default="2022-09-21", show_default=True, metavar="DATE", help="Simulated first day.")
@click.option("--days", type=click.IntRange(1, 3650), default=14, show_default=True, help="Simulated days.")
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=1440.0,
    show_default=True,
    help="Event-time speed-up: 1440 plays a day in a minute.",
)
@click.option(
    "--fast-until",
    "fast_until",
    default="2022-09-23T00:00:00Z",
    show_default=True,
    metavar="TS",
    help="Publish events before this time at once, then play at --speed (the screen says so). "
    "In the 2022 scenario no queue comes near its thresholds before 23 Sep.",
)
@click.option(
    "--broker",
    type=click.Choice(["embedded", "external"]),
    default="embedded",
    show_default=True,
    help="embedded: start Tansu in memory; external: use the Kafka at --bootstrap-servers / "
    "KAFKA_BOOTSTRAP_SERVERS (left running when the demo stops).",
)
def demo(scenario: str, start: str, days: int, speed: float, fast_until: str, broker: str) -> None:
    """Broker + worker + Prometheus/Alertmanager (when installed) + the simulator, with a live view.

    \b
    Example:
      bordermon demo                                  # the 2022 surge, a day a minute
      bordermon demo --start 2022-09-23 --speed 7200  # straight to the worst days
      scripts/kafka.sh start && bordermon demo --broker external   # on Apache Kafka at 127.0.0.1:9092
    """
    from bordermon.timeutil import parse_rfc3339
    from producers.scenarios import SCENARIOS
    from shell.demo import run_demo

    if scenario not in SCENARIOS:
        raise click.UsageError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    try:
        fast = parse_rfc3339(fast_until)
    except ValueError:
        raise click.UsageError(f"--fast-until: {fast_until!r} is not an RFC 3339 time with an offset") from None
    sys.exit(run_demo(current_settings(), scenario, start, speed, days, fast, external_broker=broker == "external"))


def main() -> None:
    from bordermon.stopping import Stopped, hangup_as_terminate

    hangup_as_terminate()  # a closed terminal stops every command as SIGTERM does
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort as exc:
        if isinstance(exc.__cause__, Stopped):  # click turns any KeyboardInterrupt into Abort
            fail(f"stopped by {exc.__cause__}", 128 + exc.__cause__.signum)
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message().replace("\n", " "))
    except BordermonError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


if __name__ == "__main__":
    main()
