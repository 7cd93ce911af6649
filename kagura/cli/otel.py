"""OpenTelemetry commands: `kagura monitor export`, `kagura monitor ingest` and `kagura serve`.

Thin commands over `kagura.observability.otel`: parse, call, print one line.
protobuf and the OTLP messages load inside the commands that need them; a
missing `otel` extra is reported as one line naming the install command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from kagura.cli.options import (
    AgentOpt,
    DbOpt,
    JsonOpt,
    NotFound,
    SinceOpt,
    UntilOpt,
    UsageError,
    db_path,
    inherited,
    parse_window,
    print_json,
    reading,
)

FORMATS = ("otlp-json",)
INSTALL_HINT = "install the OpenTelemetry extra: pip install 'kagura-ai[otel]'"


def _need_otel() -> None:
    """UsageError naming the extra when protobuf or the OTLP messages are missing."""
    try:
        import google.protobuf  # noqa: F401
        import opentelemetry.proto.trace.v1.trace_pb2  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"{exc.name or exc} is not installed; {INSTALL_HINT}") from None


def _open_or_create(db: Path | None):
    from kagura.observability.eventstore import EventStore

    path = db_path(db)
    if path.is_dir():
        raise UsageError(f"--db {path} is a folder; give the telemetry database file")
    return EventStore(path)


def export(
    ctx: typer.Context,
    format: Annotated[
        str, typer.Option("--format", "-f", help="File format: otlp-json (OTLP JSON Lines).")
    ] = "otlp-json",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write to this file (default: stdout)."
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Push to this OTLP/HTTP endpoint as protobuf instead (e.g. http://127.0.0.1:4318).",
        ),
    ] = None,
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Export finished runs as OpenTelemetry spans: an OTLP JSON Lines file, or a push to an OTLP/HTTP endpoint."""
    from kagura.observability.otel import export as otlp

    if format not in FORMATS:
        raise UsageError(f"unknown --format {format!r}; use one of: {', '.join(FORMATS)}")
    start, end = parse_window(since, until)
    if endpoint is not None and output is not None:
        raise UsageError("give --endpoint or --output, not both")
    store, agent = reading(ctx, agent, db)
    try:
        if endpoint is not None:
            if not endpoint.startswith(("http://", "https://")):
                raise UsageError(f"--endpoint {endpoint!r} must start with http:// or https://")
            _need_otel()
            try:
                counts = otlp.push(store, endpoint, since=start, until=end, agent=agent)
            except otlp.PushError as exc:
                raise NotFound(f"export failed: {exc}") from None
            where = otlp.traces_url(endpoint)
        elif output is not None:
            if output.parent and not output.parent.exists():
                raise NotFound(
                    f"folder {output.parent} does not exist; create it or pick another -o"
                )
            counts = otlp.write_path(output, store, since=start, until=end, agent=agent)
            where = str(output)
        else:
            counts = otlp.write_file(store, sys.stdout, since=start, until=end, agent=agent)
            where = "stdout"
    finally:
        store.close()
    if json:
        print_json({**counts, "to": where})
    elif where != "stdout":
        sys.stdout.write(
            f"Exported {counts['executions']} runs as {counts['spans']} spans to {where}\n"
        )


def ingest(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(dir_okay=False, help="An OTLP JSON Lines file (one TracesData per line)."),
    ],
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Load OpenTelemetry spans from an OTLP JSON Lines file into the store (gen_ai.* and OpenInference); exit 1 if any were rejected."""
    from kagura.observability.otel import ingest as otlp_ingest

    if not file.exists():
        raise NotFound(f"no file {file}")
    _need_otel()
    store = _open_or_create(inherited(ctx, "db", db))
    try:
        counts = otlp_ingest.ingest_file(store, file)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file} is not UTF-8 text: {exc.reason}") from None
    finally:
        store.close()
    if json:
        print_json(counts)
    else:
        sys.stdout.write(
            f"Ingested {counts['spans']} spans from {counts['lines']} lines"
            + (f"; rejected {counts['rejected']}" if counts["rejected"] else "")
            + "\n"
        )
        for line in counts["errors"]:
            sys.stderr.write(f"  {line}\n")
    if counts["rejected"]:
        raise typer.Exit(1)  # what could be read is stored; the exit code says not all of it


def serve(
    otlp: Annotated[
        bool, typer.Option("--otlp", help="Serve OTLP/HTTP traces at POST /v1/traces.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")
    ] = 4318,
    db: DbOpt = None,
) -> None:
    """Receive OpenTelemetry traces from other apps and store them as runs (Ctrl+C stops)."""
    if not otlp:
        raise UsageError("nothing to serve; pass --otlp")
    _need_otel()
    from kagura.observability.otel.receiver import Receiver

    store = _open_or_create(db)
    try:
        receiver = Receiver(store, host, port)
    except OSError as exc:
        store.close()
        raise NotFound(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sys.stdout.write(f"Receiving OTLP traces at {receiver.url} into {store.path}\n")
    sys.stdout.flush()
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a service manager) stops like Ctrl+C

    signal.signal(signal.SIGTERM, stop)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.server.server_close()
        store.close()


def register(app: typer.Typer, monitor: typer.Typer) -> None:
    """Add `monitor export`, `monitor ingest` and the top-level `serve`."""
    monitor.command("export")(export)
    monitor.command("ingest")(ingest)
    app.command("serve")(serve)
