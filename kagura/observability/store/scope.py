"""Narrowing every analytic to one session, user or tag, without editing the SQL files.

A scope puts two common table expressions in front of a catalogue query:
`executions` (the runs of that session, user or tag) and `events` (their
events). They shadow the views of the same names, so each file of sql/ answers
for the scope as written, and values stay parameters
($scope_session, $scope_user, $scope_tag_key, $scope_tag_value).
"""

from __future__ import annotations

import re
from typing import Any

_LEAD = re.compile(r"\A(\s*(?:--[^\n]*\n\s*)*)", re.S)
_WITH = re.compile(r"WITH\b(\s+RECURSIVE\b)?", re.I)

_EXECUTIONS = """executions AS (
    SELECT * FROM executions
    WHERE ($scope_session IS NULL OR session_id = $scope_session)
      AND ($scope_user IS NULL OR user_id = $scope_user)
      AND ($scope_tag_key IS NULL OR (
            list_contains(json_keys(tags), $scope_tag_key)
            AND ($scope_tag_value IS NULL OR tags->>$scope_tag_key = $scope_tag_value)))
)"""
_EVENTS = """events AS (
    SELECT * FROM events WHERE execution_id IN (SELECT id FROM executions)
)"""


class Scope:
    """One session, one user and/or one tag ("label" or "key=value"); empty when all are None."""

    __slots__ = ("session_id", "user_id", "tag")

    def __init__(
        self, session_id: str | None = None, user_id: str | None = None, tag: str | None = None
    ):
        for name, value in (("session_id", session_id), ("user_id", user_id), ("tag", tag)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        self.session_id, self.user_id, self.tag = session_id, user_id, tag

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.session_id, self.user_id, self.tag))

    def params(self) -> dict[str, Any]:
        """The scope's values as the parameters of `wrap`'s text."""
        key, value = self.tag, None
        if self.tag is not None and "=" in self.tag:
            key, value = self.tag.split("=", 1)
        return {
            "scope_session": self.session_id,
            "scope_user": self.user_id,
            "scope_tag_key": key,
            "scope_tag_value": value,
        }

    def wrap(self, text: str, reads_events: bool) -> str:
        """`text` with the scoped `executions` (and `events`) defined in front of it."""
        ctes = _EXECUTIONS + (",\n" + _EVENTS if reads_events else "")
        lead = _LEAD.match(text).group(1)  # type: ignore[union-attr]  # _LEAD matches any text
        body = text[len(lead) :]
        match = _WITH.match(body)
        if match is None:
            return f"{lead}WITH {ctes}\n{body}"
        return f"{lead}{match.group(0)} {ctes},\n{body[match.end() :]}"

    def __repr__(self) -> str:
        return f"Scope(session_id={self.session_id!r}, user_id={self.user_id!r}, tag={self.tag!r})"
