"""Who and what a run belongs to: session, user, tags and metadata.

`kagura.context(session_id=..., user_id=..., tags=[...], metadata={...})` sets
them for every run started inside the block, nested and concurrent ones
included: the values live in a context variable, so asyncio tasks (gather,
create_task) and threads given a copied context (`asyncio.to_thread`,
`contextvars.copy_context().run`) see them. Blocks nest: an inner session or
user replaces the outer one, tags add up, metadata keys are merged.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["RunContext", "context", "current_context"]


class RunContext:
    """The session, user, tags and metadata in effect (immutable)."""

    __slots__ = ("session_id", "user_id", "tags", "metadata")

    def __init__(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: tuple[str, ...] = (),
        metadata: Mapping[str, Any] | None = None,
    ):
        self.session_id = session_id
        self.user_id = user_id
        self.tags = tags
        self.metadata = dict(metadata or {})

    def merged(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunContext:
        """This context with the given values added (None keeps the current one)."""
        return RunContext(
            session_id if session_id is not None else self.session_id,
            user_id if user_id is not None else self.user_id,
            _tags(self.tags, tags),
            {**self.metadata, **check_metadata(metadata)},
        )

    def __repr__(self) -> str:
        return (
            f"RunContext(session_id={self.session_id!r}, user_id={self.user_id!r}, "
            f"tags={list(self.tags)!r}, metadata={self.metadata!r})"
        )


_EMPTY = RunContext()
_current: contextvars.ContextVar[RunContext] = contextvars.ContextVar(
    "kagura_run_context", default=_EMPTY
)


def current_context() -> RunContext:
    """The session, user, tags and metadata that a run started here gets."""
    return _current.get()


def check_tags(tags: Any) -> tuple[str, ...]:
    """`tags` as a tuple of non-empty strings (a list, tuple or set of them); ValueError otherwise."""
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise ValueError(f"tags must be a list of strings, got {type(tags).__name__}")
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"each tag must be a non-empty string, got {tag!r}")
    return tuple(tags)


def check_metadata(metadata: Any) -> dict[str, Any]:
    """`metadata` as a dict with string keys; ValueError otherwise."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    for key in metadata:
        if not isinstance(key, str):
            raise ValueError(f"metadata keys must be strings, got {key!r}")
    return dict(metadata)


def _check_id(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _tags(first: tuple[str, ...], more: Iterable[str] | None) -> tuple[str, ...]:
    """`first` then the new tags of `more`, each once, in order."""
    extra = check_tags(more)
    if not extra:
        return first
    return first + tuple(dict.fromkeys(t for t in extra if t not in first))


class context:  # noqa: N801 - used like a function: `with kagura.context(...):`
    """Give every run started inside this block a session, user, tags and metadata.

    `with kagura.context(session_id="s1", user_id="ann", tags=["beta"]): ...`
    (also `async with`). Values flow into nested agents, asyncio tasks and
    threads given a copied context; blocks nest (inner session/user win, tags
    add up, metadata merges).
    """

    def __init__(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ):
        self._values = (
            _check_id(session_id, "session_id"),
            _check_id(user_id, "user_id"),
            check_tags(tags),
            check_metadata(metadata),
        )
        self._tokens: list[contextvars.Token[RunContext]] = []

    def __enter__(self) -> RunContext:
        value = _current.get().merged(*self._values)
        self._tokens.append(_current.set(value))
        return value

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> RunContext:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()
