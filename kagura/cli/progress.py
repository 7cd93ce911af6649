"""Progress for long commands: shown only after a second, only on a terminal, never under --json."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

DELAY = 1.0


def wanted(quiet: bool = False) -> bool:
    """True when progress may be drawn: a terminal on stdout and not --json."""
    return not quiet and sys.stdout.isatty()


def _console() -> Any:
    """A Console on the current stdout (not the one rich saw first)."""
    from rich.console import Console

    return Console(file=sys.stdout)


def run_with_spinner(
    description: str, work: Callable[[], T], *, quiet: bool = False, delay: float = DELAY
) -> T:
    """`work()`'s result; a spinner with the elapsed time shows while it runs longer than `delay`."""
    if not wanted(quiet):
        return work()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="kagura-cli-work", daemon=True)
    worker.start()
    worker.join(delay)
    if worker.is_alive():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
            console=_console(),
        ) as bar:
            bar.add_task(description, total=None)
            while worker.is_alive():
                worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Counter:
    """A progress bar over `total` steps that appears once the work has lasted `delay` seconds."""

    def __init__(self, description: str, total: int, *, quiet: bool = False, delay: float = DELAY):
        self.description = description
        self.total = total
        self.enabled = wanted(quiet)
        self.delay = delay
        self.started = time.monotonic()
        self.done = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Counter:
        return self

    def advance(self, steps: int = 1) -> None:
        """Count `steps` more done; draws the bar once the delay has passed."""
        self.done += steps
        if not self.enabled:
            return
        if self._bar is None and time.monotonic() - self.started >= self.delay:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
                console=_console(),
            )
            self._task = self._bar.add_task(self.description, total=self.total)
            self._bar.start()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
