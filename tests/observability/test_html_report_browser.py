"""The HTML report in a real headless Chromium: it loads clean, its charts draw, its waterfalls open.

The page is written by the real command (`kagura monitor report` in a subprocess) from the
seeded store of report_seed.py, whose numbers are known by hand. The browser is driven over
the DevTools protocol (tests/browser.py); the screenshot is kept in .test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Browser, find_chromium
from cli_process import run_cli
from report_seed import EVE, HOSTILE, seed

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"
CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(the report file, what the seeded store holds), written by the real CLI."""
    folder = tmp_path_factory.mktemp("report")
    seeded = seed(folder / "telemetry.db")
    out = folder / "report.html"
    result = run_cli("monitor", "report", "--db", str(seeded.path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out, seeded


@pytest.fixture(scope="module")
def browser(page):
    if CHROMIUM is None:
        pytest.skip(
            "no Chromium found: install Debian's chromium (scripts/ci-deps.sh does) "
            "or point KAGURA_CHROMIUM at a Chrome/Chromium binary"
        )
    with Browser(CHROMIUM, width=1280, height=900) as opened:
        opened.open(page[0])
        assert opened.evaluate("document.body.dataset.drawn") == "true"
        yield opened


def boxes(browser: Browser, selector: str) -> list[dict]:
    """The bounding boxes of the elements `selector` finds, in document order."""
    return browser.evaluate(
        f"Array.from(document.querySelectorAll({selector!r})).map(e => "
        "{const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}})"
    )


def click(browser: Browser, selector: str, index: int = 0) -> None:
    """Scroll the `index`-th element `selector` finds into view and click its middle with the mouse."""
    box = browser.evaluate(
        f"(() => {{const e = document.querySelectorAll({selector!r})[{index}];"
        " e.scrollIntoView({block: 'center'});"
        " const b = e.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]})()"
    )
    browser.click(*box)


def test_page_loads_without_errors_or_requests(browser):
    assert browser.problems() == []
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert browser.evaluate("typeof window.__pwned") == "undefined"


def test_cost_per_day_draws_one_bar_per_day_with_runs(browser, page):
    _, seeded = page
    bars = boxes(browser, "#chart-cost-day rect.bar")
    assert len(bars) == len(seeded.cost_by_day) == 3
    assert all(b["w"] > 0 and b["h"] > 0 for b in bars)
    assert [b["x"] for b in bars] == sorted(b["x"] for b in bars)
    # Heights follow the spend (by date: day 8, day 3, day 1 before today).
    costs = [seeded.cost_by_day[d] for d in sorted(seeded.cost_by_day)]
    tallest = max(range(3), key=lambda i: costs[i])
    for bar, cost in zip(bars, costs, strict=True):
        assert bar["h"] == pytest.approx(bars[tallest]["h"] * cost / costs[tallest], abs=1.0)
    dates = browser.evaluate(
        "Array.from(document.querySelectorAll('#chart-cost-day rect.bar')).map(e => e.dataset.date)"
    )
    assert dates == sorted(seeded.cost_by_day)


def test_cost_per_agent_and_latency_draw(browser, page):
    _, seeded = page
    bars = boxes(browser, "#chart-cost-agent rect.bar")
    assert len(bars) == len(seeded.cost_by_agent)
    widths = sorted((b["w"] for b in bars), reverse=True)
    assert widths[0] > widths[1] > widths[2] > 0  # $0.040, $0.009, $0.001
    figures = browser.evaluate(
        "Array.from(document.querySelectorAll('#latency-charts figure')).map(f => "
        "[f.dataset.agent, f.querySelectorAll('circle').length, f.querySelector('svg').getBoundingClientRect().width])"
    )
    # One chart per agent; p50, p95 and p99 dots for each day it ran (alpha: 2, beta: 2, the third: 1).
    assert sorted((a, n) for a, n, _ in figures) == sorted(
        [("alpha", 6), ("beta", 6), (HOSTILE, 3)]
    )
    assert all(width > 0 for _, _, width in figures)


def test_top_sessions_and_users_show_their_share(browser, page):
    _, seeded = page
    for kind, expected in (("sessions", seeded.sessions), ("users", seeded.users)):
        names = browser.evaluate(
            f"Array.from(document.querySelectorAll('#top-{kind} tbody td:first-child'))"
            ".map(d => d.textContent)"
        )
        assert names == list(expected)
        bars = boxes(browser, f"#top-{kind} svg.share rect")
        assert len(bars) == len(expected)
        # Bars are drawn to the costliest row's spend.
        costs = [cost for _, cost in expected.values()]
        for bar, cost in zip(bars, costs, strict=True):
            assert bar["w"] == pytest.approx(max(1.0, 100 * cost / costs[0]), abs=0.2)
    assert EVE in browser.evaluate("document.getElementById('top-users').textContent")
    assert browser.evaluate("document.querySelectorAll('i').length") == 0


def test_clicking_a_run_shows_its_waterfall(browser, page):
    _, seeded = page
    assert browser.evaluate("document.getElementById('waterfall').hidden") is True
    click(browser, f'#runs-table tr[data-trace="{seeded.nested_trace}"]')
    assert browser.evaluate("document.getElementById('waterfall').hidden") is False
    assert seeded.nested_trace in browser.evaluate(
        "document.getElementById('waterfall-title').textContent"
    )
    rows = boxes(browser, "#waterfall-chart .row")
    assert len(rows) == seeded.traces[seeded.nested_trace] == 6
    spans = boxes(browser, "#waterfall-chart .row rect.span")
    assert len(spans) == 6 and all(s["w"] > 0 and s["h"] > 0 for s in spans)
    # The nested run starts 1 s into the 6 s root: its bar starts a sixth of the way along.
    labels = browser.evaluate(
        "Array.from(document.querySelectorAll('#waterfall-chart .row.run text.label'))"
        ".map(t => t.firstChild.nodeValue)"
    )
    assert labels == ["alpha", "beta"]
    run_spans = boxes(browser, "#waterfall-chart .row.run rect.span")
    root, child = run_spans
    assert child["x"] - root["x"] == pytest.approx(root["w"] / 6, abs=1.5)
    assert child["w"] == pytest.approx(root["w"] / 2, abs=1.5)
    # Clicking the nested run's row shows its details.
    click(browser, "#waterfall-chart .row.run rect.back", index=1)
    detail = browser.evaluate("document.getElementById('waterfall-detail').textContent")
    assert "beta" in detail and seeded.child_agent in detail
    assert browser.problems() == []


def test_scores_show_in_their_table_and_a_runs_details(browser, page):
    _, seeded = page
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#scores-table tbody tr')).map(r => "
        "[r.cells[0].textContent, r.cells[1].textContent])"
    )
    assert sorted(map(tuple, rows)) == sorted(seeded.scores)
    click(browser, f'#runs-table tr[data-trace="{list(seeded.traces)[3]}"]')
    detail = browser.evaluate("document.getElementById('waterfall-detail').textContent")
    assert "quality = 0.4" in detail and "quality = 0.6 (second look)" in detail
    assert browser.problems() == []


def test_hostile_text_shows_as_text(browser, page):
    _, seeded = page
    click(browser, f'#runs-table tr[data-trace="{seeded.hostile_trace}"]')
    detail = browser.evaluate(
        "Array.from(document.querySelectorAll('#waterfall-detail dd')).map(d => d.textContent)"
    )
    assert HOSTILE in detail
    assert HOSTILE + " & more" in " ".join(detail)
    cells = browser.evaluate(
        "Array.from(document.querySelectorAll('#health-table td:first-child')).map(d => d.textContent)"
    )
    assert HOSTILE in cells
    assert browser.evaluate("document.querySelectorAll('img, b').length") == 0
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.problems() == []


def test_screenshot_is_kept(browser, capsys):
    path = browser.screenshot(ARTIFACTS / "report.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with capsys.disabled():
        print(f"\nreport screenshot: {path}")
