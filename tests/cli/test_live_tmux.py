"""The live view in a real terminal (tmux): runs recorded meanwhile appear, Ctrl+C exits 0 and restores the cursor."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest

from kagura.observability import Telemetry
from kagura.observability.eventstore import EventStore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    """One tmux session on a private server, running a command in a 110x40 terminal."""

    def __init__(self, socket: str, command: str):
        self.base = ["tmux", "-S", socket]
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "live", "-x", "110", "-y", "40", command],
            check=True,
        )

    def text(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "live"], capture_output=True, text=True
        ).stdout

    def wait_for(self, predicate, timeout: float = 40.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed what was expected:\n{screen}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "live", *keys], check=True)

    def cursor_visible(self) -> bool:
        out = subprocess.run(
            [*self.base, "display", "-p", "-t", "live", "#{cursor_flag}"],
            capture_output=True,
            text=True,
        ).stdout
        return out.strip() == "1"

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def _line(screen: str, word: str) -> str:
    return next((line for line in screen.splitlines() if word in line), "")


def test_live_view_shows_runs_as_they_are_recorded_and_exits_on_ctrl_c(small, tmp_path):
    command = f"{sys.executable} -m kagura.cli monitor --refresh 0.3; echo EXIT=$?; sleep 60"
    pane = Pane(str(tmp_path / "tmux.sock"), command)
    try:
        screen = pane.wait_for(lambda s: "Recent Activity" in s)
        assert "📊 Kagura Agent Monitor" in screen
        assert "Total: 10 | Completed: 7 | Failed: 2 | Running: 1" in screen
        assert not pane.cursor_visible()  # the live view hides the cursor while it draws

        # An instrumented function records a run; it stays open until `release` is set.
        telemetry = Telemetry(EventStore(small.path))
        release = threading.Event()

        @telemetry.instrument("tmux_probe")
        def probe(question: str) -> str:
            telemetry.collector.record_llm_call("gpt-4o-mini", 120, 30, 0.05, cost=0.0000360)
            release.wait(60)
            return "done"

        worker = threading.Thread(target=probe, args=("are you there?",))
        worker.start()
        try:
            screen = pane.wait_for(lambda s: "RUNNING" in _line(s, "tmux_probe"))
            assert "Running: 2" in screen
        finally:
            release.set()
            worker.join(30)
        assert telemetry.collector.flush()
        screen = pane.wait_for(lambda s: "✓ COMPLETED" in _line(s, "tmux_probe"))
        assert "Total: 11 | Completed: 8 | Failed: 2 | Running: 1" in screen
        assert "$0.000036" in _line(screen, "tmux_probe")
        # the newest run is the first row of the table
        rows = [line for line in screen.splitlines() if "│" in line and ":" in line]
        assert "tmux_probe" in rows[0]
        (tmp_path / "live-view.txt").write_text(screen)

        pane.keys("C-c")
        screen = pane.wait_for(lambda s: "EXIT=" in s, timeout=20)
        assert "EXIT=0" in screen
        assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
        assert pane.cursor_visible()
    finally:
        pane.close()
