"""Shared test setup: every test gets its own KAGURA_HOME, so none touches a real home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def kagura_home(tmp_path, monkeypatch):
    """A fresh, empty KAGURA_HOME for each test."""
    home = tmp_path / "kagura-home"
    monkeypatch.setenv("KAGURA_HOME", str(home))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.delenv("KAGURA_TELEMETRY", raising=False)
    # A shared lake is opted into by a test, never inherited from the shell.
    for name in ("KAGURA_LAKE", "KAGURA_HOST_ID", "KAGURA_LAKE_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return home


# The tests that take seconds each (a real process per check: the CLI, a kernel, a JVM, a
# crash harness): `pytest -m "not slow"` is the quick loop (CONTRIBUTING.md) and CI runs
# everything. A path marks a whole file, "path::name" one test (and its params).
SLOW = (
    "agent/test_tutorial_example.py",  # the tutorial's example agents end to end
    "agent/test_concurrency.py::test_thousand_concurrent_calls_some_nested_some_failing",
    "analytics/test_notebooks.py",  # runs both notebooks in a kernel, builds the wheel
    "analytics/test_docs.py::test_tutorial_python_blocks_run_in_order",
    "analytics/test_docs.py::test_tutorial_commands_run",
    "analytics/test_analytics_cli.py",
    "analytics/test_health_budget.py::test_silent_agents",
    "analytics/test_regressions.py::test_compare_by_count",
    "analytics/test_regressions.py::test_thresholds_are_adjustable",
    "analytics/test_rollup_planner.py::test_rollup_answers_equal_scan_answers",
    "analytics/test_sql_sandbox.py::test_the_cli_leaks_nothing",  # a process per attack
    "analytics/test_sql_sandbox.py::test_cli_limits",
    "cli/",  # the command line in a subprocess per check
    "fleet/test_s3_lake.py",  # an S3 server and host processes
    "fleet/test_scale_out_docs.py::test_the_reading_commands_run",
    "fleet/test_shared_folder.py::test_cli_reads_the_fleet_and_filters_hosts",
    "observability/test_arrow_reader.py",  # the compaction reader in a child process
    "observability/test_fixtures.py::test_command_line_fills_a_store_and_refuses_bad_input",
    "observability/test_fixtures.py::test_fill_appends_to_a_real_store",
    "observability/test_html_report_browser.py",
    "observability/test_kagura_api.py::test_a_script_written_for_kagura_runs_unchanged",
    "observability/test_scores.py::test_cli_score_trace_scores_and_regressions",
    "observability/test_search.py::test_cli_search",
    "otel/test_docs_otel.py::test_the_python_snippet_reaches_kagura_serve",
    "otel/test_forward.py",
    "otel/test_receiver_sdk.py",  # the OTel SDK against `kagura serve` in a process
    "otel/test_roundtrip.py",
    "reliability/test_bad_input.py::test_hostile_cli_arguments_never_give_a_traceback",
    "reliability/test_bad_input.py::test_hostile_arguments_in_a_real_process",
    "reliability/test_bad_input.py::test_any_id_is_found_exactly_and_prefixes_are_literal",
    "reliability/test_bad_input.py::test_times_from_year_1_to_9999_are_stored_and_queried",
    "reliability/test_bad_input.py::test_any_unicode_and_json_reads_back_as_given",
    "reliability/test_bad_input.py::test_the_same_values_read_back_from_parquet",  # after it
    "reliability/test_bad_input.py::test_the_store_is_unchanged_by_hostile_arguments",
    "reliability/test_bad_input.py::test_the_same_times_are_queried_from_parquet",
    "reliability/test_crash.py",  # kills writer processes at random
    "reliability/test_crash_points.py",  # kills at every named step
    "reliability/test_crash_recording.py",
    "reliability/test_concurrency.py",  # writers and readers in many processes
    "reliability/test_damaged.py",
    "reliability/test_limits.py",
    "reliability/test_prune_wipe.py",
    "reliability/test_retention.py",  # prunes under a writing process
    "reliability/test_upgrade.py",
    "spark/",  # a JVM per session
    "synthetic/test_lake.py::test_every_monitor_command_answers",
    "synthetic/test_lake.py::test_counts_and_sums_match_raw_parquet",
)

# The quick loop keeps, in each folder, at least one check of the real command line in a
# subprocess (and the import-lightness promise) even where the rest of its file is slow.
QUICK = (
    "analytics/test_analytics_cli.py::test_sql_named_adhoc_csv_and_list",
    "cli/test_monitor.py::test_list_shows_history_newest_first_with_copyable_ids",
    "cli/test_monitor.py::test_bad_usage_is_one_line_and_exit_2",
    "cli/test_monitor.py::test_monitor_never_imports_litellm_and_polars",
    "otel/test_roundtrip.py::test_export_to_stdout_and_filters",
    "reliability/test_damaged.py::test_a_file_that_is_not_sqlite_is_refused_and_left_alone",
)

_TESTS = Path(__file__).resolve().parent


def _listed(where: str, name: str, entries: tuple[str, ...]) -> bool:
    return any(where.startswith(e) if "::" not in e else name == e for e in entries)


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(_TESTS).as_posix()
        name = f"{where}::{item.originalname}"
        if _listed(where, name, SLOW) and not _listed(where, name, QUICK):
            item.add_marker(pytest.mark.slow)
