"""The errors the telemetry store raises, each with a message that says what to do."""

from __future__ import annotations


class StoreError(Exception):
    """Something about the telemetry store is wrong; the message names it and the fix."""


class StoreBusy(StoreError):
    """A write that was asked not to wait found the database locked by another writer."""


class NotAStoreError(StoreError):
    """The file at the database path is not a kagura telemetry store."""


class SchemaTooNewError(StoreError):
    """The store was written by a newer kagura than this one."""


class AmbiguousIdError(StoreError, LookupError):
    """An id prefix matches more than one execution."""

    def __init__(self, prefix: str, candidates: list[str]):
        self.prefix = prefix
        self.candidates = candidates
        shown = ", ".join(candidates[:10]) + (" ..." if len(candidates) > 10 else "")
        many = "more than 20" if len(candidates) > 20 else str(len(candidates))
        super().__init__(
            f"id prefix {prefix!r} matches {many} executions: {shown}; give more characters"
        )


class QueryError(StoreError):
    """A query failed; the message names the SQL file (or text) and the params.

    `sql` holds the text that failed, for a closer look.
    """

    sql: str | None = None
