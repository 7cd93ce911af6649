"""Live forwarding: finished runs also go to an OTLP/HTTP collector, from a background thread.

With `KAGURA_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT` set, the recorder's writer hands every commit of
finished runs to `Forwarder.offer()`, which only appends to a queue. A thread
sends the queued runs in batches as protobuf, retrying 429/502/503/504 with
backoff. The local copy is already committed when a run is offered, so a
collector that is down costs nothing but the forwarded copy: spans that could
not be sent are counted in `<db>.otlp.json` beside the store, which
`kagura monitor doctor` reports. This module loads no protobuf until it sends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

BATCH_SPANS = 512
MAX_QUEUED_RUNS = 50_000  # beyond this, the oldest queued runs are counted unsent and dropped
LINGER = 1.0  # seconds a partial batch waits for more runs
RETRIES = 5
EXIT_WAIT = 5.0  # seconds the process waits at exit for queued runs to be sent


def endpoint_from_env(env: Any = None) -> str | None:
    """The traces URL the environment asks for, or None (KAGURA_ first, then the OTel variables)."""
    env = os.environ if env is None else env
    base = env.get("KAGURA_OTLP_ENDPOINT")
    if base:
        return _traces_url(base)
    full = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if full:
        return full  # the OTel rule: the traces endpoint is used as given
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return _traces_url(base) if base else None


def _traces_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def headers_from_env(env: Any = None) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS ("k=v,k2=v2") as a dict (kept in memory, never written)."""
    import urllib.parse

    env = os.environ if env is None else env
    text = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS")
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return out


def status_path(db_path: Path) -> Path:
    """Where forwarding counts of the store at `db_path` are kept: `<db minus suffix>.otlp.json`."""
    return db_path.with_name(db_path.stem + ".otlp.json")


def read_status(db_path: Path | None) -> dict[str, Any] | None:
    """The forwarding counts of a store (endpoint, sent, unsent, last_error), or None if it never forwarded."""
    if db_path is None:
        return None
    try:
        value = json.loads(status_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _add_to_status(db_path: Path, endpoint: str, sent: int, unsent: int, error: str | None) -> None:
    """Add counts to the status file, under an exclusive lock (several processes may forward)."""
    import fcntl

    path = status_path(db_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as handle:
            try:
                status = json.loads(handle.read() or "{}")
            except ValueError:
                status = {}
            if not isinstance(status, dict):
                status = {}
            status["endpoint"] = endpoint
            status["sent"] = int(status.get("sent", 0)) + sent
            status["unsent"] = int(status.get("unsent", 0)) + unsent
            status["updated_at"] = time.time()
            if error:
                status["last_error"] = error
                status["last_error_at"] = time.time()
            handle.seek(0)
            handle.write(json.dumps(status))
            handle.truncate()
    finally:
        os.close(fd)


class Forwarder:
    """Queues finished runs and sends them to one OTLP/HTTP endpoint from a daemon thread."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: dict[str, str] | None = None,
        batch_spans: int = BATCH_SPANS,
        linger: float = LINGER,
        retries: int = RETRIES,
        backoff: float = 0.5,
        timeout: float = 10.0,
        max_queued: int = MAX_QUEUED_RUNS,
    ):
        self.endpoint = endpoint
        self.headers = headers or {}
        self.batch_spans = batch_spans
        self.linger = linger
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.max_queued = max_queued
        self.sent = 0
        self.unsent = 0
        self._queue: deque[tuple[Any, tuple[dict[str, Any], list[dict[str, Any]]]]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._inflight: list[tuple[Any, list]] = []
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # --- the writer's side: never blocks for long ----------------------------------

    def offer(self, store: Any, pairs: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        """Queue the finished runs of one commit (the after-commit hook)."""
        finished = [pair for pair in pairs if pair[0].get("status") != "running"]
        if not finished:
            return
        dropped: dict[Any, int] = {}
        with self._cond:
            for pair in finished:
                self._queue.append((store, pair))
            while len(self._queue) > self.max_queued:
                old_store, (_, events) = self._queue.popleft()
                dropped[old_store] = dropped.get(old_store, 0) + 1 + len(events)
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, name="kagura-otlp-forward", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        for old_store, n in dropped.items():
            self._count(old_store, 0, n, "queue full: the collector is slower than the agents")

    # --- the sending thread ----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._busy = False
                    self._cond.notify_all()
                    if not self._cond.wait(30.0) and not self._queue:
                        self._thread = None
                        return
                    continue
                self._busy = True
                if _span_count(self._queue) < self.batch_spans:
                    self._cond.wait(self.linger)
                batch = self._take()
            self._send(batch)

    def _take(self) -> list[tuple[Any, tuple[dict[str, Any], list[dict[str, Any]]]]]:
        batch: list[tuple[Any, tuple[dict[str, Any], list[dict[str, Any]]]]] = []
        spans = 0
        while self._queue and (not batch or spans < self.batch_spans):
            item = self._queue.popleft()
            batch.append(item)
            spans += 1 + len(item[1][1])
        return batch

    def _send(self, batch: list[tuple[Any, tuple[dict[str, Any], list[dict[str, Any]]]]]) -> None:
        from kagura.observability.otel import export

        by_store: dict[int, tuple[Any, list]] = {}
        for store, pair in batch:
            by_store.setdefault(id(store), (store, []))[1].append(pair)
        self._inflight = list(by_store.values())
        while self._inflight:
            store, pairs = self._inflight[0]
            n = sum(1 + len(events) for _, events in pairs)
            try:
                body = export.request_bytes(export.row_spans(pairs))
                export.post(
                    self.endpoint,
                    body,
                    timeout=self.timeout,
                    retries=self.retries,
                    backoff=self.backoff,
                    headers=self.headers,
                )
            except Exception as exc:  # the collector's trouble never reaches the agent
                self._settle(store, 0, n, f"{type(exc).__name__}: {exc}")
            else:
                self._settle(store, n, 0, None)

    def _settle(self, store: Any, sent: int, unsent: int, error: str | None) -> None:
        with self._cond:
            if not self._inflight:
                return  # given up on at exit already
            self._inflight.pop(0)
        self._count(store, sent, unsent, error)

    def _count(self, store: Any, sent: int, unsent: int, error: str | None) -> None:
        self.sent += sent
        self.unsent += unsent
        if error:
            _logger().warning(
                "kagura telemetry: %d spans not forwarded to %s: %s", unsent, self.endpoint, error
            )
        path = getattr(store, "path", None)
        if path is not None:
            with contextlib.suppress(OSError):
                _add_to_status(Path(path), self.endpoint, sent, unsent, error)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued run was sent (or given up on); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._busy:
                if self._thread is None or not self._thread.is_alive():
                    return not self._queue
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def abandon(self) -> int:
        """Count everything queued or being sent as unsent (the process is exiting); return spans."""
        with self._cond:
            left = [(store, [pair]) for store, pair in self._queue] + self._inflight
            self._queue.clear()
            self._inflight = []
        total = 0
        for store, pairs in left:
            n = sum(1 + len(events) for _, events in pairs)
            total += n
            self._count(store, 0, n, "the process exited before they could be sent")
        return total


def _span_count(queue: deque) -> int:
    total = 0
    for _, (_, events) in queue:
        total += 1 + len(events)
        if total >= BATCH_SPANS:
            break
    return total


def _logger() -> Any:
    import logging

    return logging.getLogger("kagura.telemetry")


_installed: dict[str, Any] = {}


def install(endpoint: str | None = None) -> Forwarder | None:
    """Forward every commit of finished runs to `endpoint` (default: from the environment)."""
    from kagura.observability.recording import collector

    endpoint = endpoint or endpoint_from_env()
    if not endpoint:
        return None
    current = _installed.get("forwarder")
    if current is not None and current.endpoint == endpoint:
        return current
    uninstall()
    forwarder = Forwarder(endpoint, headers=headers_from_env())
    _installed["forwarder"] = forwarder
    _installed["remove"] = collector.after_commit(forwarder.offer)
    return forwarder


def uninstall() -> None:
    """Stop forwarding new commits (what is queued is still sent)."""
    remove = _installed.pop("remove", None)
    if remove is not None:
        remove()
    _installed.pop("forwarder", None)


def install_from_env() -> None:
    """Install forwarding when an OTLP endpoint variable is set (a cheap check otherwise)."""
    if endpoint_from_env() is not None:
        install()


def _flush_at_exit() -> None:
    forwarder = _installed.get("forwarder")
    if forwarder is not None:
        from kagura.observability.recording import collector

        collector.flush(timeout=EXIT_WAIT)  # runs still being committed are offered first
        if not forwarder.flush(EXIT_WAIT):
            forwarder.abandon()


atexit.register(_flush_at_exit)
