"""Progress for long commands: drawn only on a terminal, only after the delay, never when quiet."""

from __future__ import annotations

import io
import sys
import time

import pytest

from kagura.cli import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """A fake terminal on stdout, set when the test body starts (pytest resets stdout after setup)."""
    screen = Terminal()

    def use() -> Terminal:
        monkeypatch.setattr(sys, "stdout", screen)
        return screen

    return use


def test_spinner_shows_for_slow_work_and_returns_its_result(terminal):
    terminal = terminal()
    assert (
        progress.run_with_spinner("Compacting telemetry", lambda: time.sleep(0.6) or 42, delay=0.1)
        == 42
    )
    assert "Compacting telemetry" in terminal.getvalue()


def test_spinner_stays_hidden_for_quick_quiet_or_piped_work(terminal, monkeypatch):
    terminal = terminal()
    assert progress.run_with_spinner("Quick", lambda: 7, delay=0.5) == 7
    assert (
        progress.run_with_spinner("Quiet", lambda: time.sleep(0.3) or 8, quiet=True, delay=0.05)
        == 8
    )
    assert terminal.getvalue() == ""
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert progress.run_with_spinner("Piped", lambda: time.sleep(0.3) or 9, delay=0.05) == 9
    assert pipe.getvalue() == ""


def test_spinner_passes_the_work_s_error_on(terminal):
    terminal()

    def boom():
        time.sleep(0.3)
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        progress.run_with_spinner("Pruning", boom, delay=0.05)


def test_counter_appears_after_the_delay_and_counts(terminal):
    terminal = terminal()
    with progress.Counter("Recording agent runs", 4, delay=0.2) as counter:
        counter.advance()
        assert terminal.getvalue() == ""  # not yet: the work is young
        time.sleep(0.25)
        for _ in range(3):
            counter.advance()
    assert counter.done == 4
    assert "Recording agent runs" in terminal.getvalue()
    assert "4/4" in terminal.getvalue()
