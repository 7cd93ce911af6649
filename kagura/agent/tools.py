"""Tools an agent's model may call: `@tool`, and the JSON schemas the model sees.

A tool is a plain or async function. Its schema comes from its signature (types
through pydantic) and its docstring (the first paragraph describes the tool, an
`Args:` section describes the parameters). Called directly inside a recorded run,
a `@tool` function records its own `tool_call` event.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from typing import Any

_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_SECTION_HEADER = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class Tool:
    """A function the model may call: its name, description and parameters schema."""

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, description: str | None = None
    ):
        import inspect

        if not callable(fn):
            raise TypeError(f"a tool must be a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        summary, params = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.param_docs = params
        self.is_async = inspect.iscoroutinefunction(fn)
        self._schema: dict[str, Any] | None = None

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema sent to the model (built on first use)."""
        if self._schema is None:
            self._schema = {
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": self.description,
                    "parameters": _parameters_schema(self.fn, self.param_docs),
                },
            }
        return self._schema

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        """The tool's result for keyword `arguments` (awaited when the tool is async)."""
        import inspect

        result = self.fn(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result


def as_tool(obj: Any) -> Tool:
    """A Tool for a function, a `@tool` function or a Tool."""
    if isinstance(obj, Tool):
        return obj
    spec = getattr(obj, "__kagura_tool__", None)
    if isinstance(spec, Tool):
        return spec
    return Tool(obj)


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Mark a function as a tool; it stays callable as before.

    `@tool` or `@tool(name=..., description=...)`. A direct call made while an
    agent runs is recorded as a `tool_call` event of that run.
    """
    if fn is None:
        return lambda f: tool(f, name=name, description=description)
    spec = Tool(fn, name=name, description=description)

    if spec.is_async:

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                _record(spec.name, started, args, kwargs, exc)
                raise
            _record(spec.name, started, args, kwargs, None)
            return result

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                _record(spec.name, started, args, kwargs, exc)
                raise
            _record(spec.name, started, args, kwargs, None)
            return result

        wrapper = sync_wrapper
    wrapper.__kagura_tool__ = spec
    return wrapper


def _record(
    name: str,
    started: float,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: Exception | None,
) -> None:
    """Record a direct call of a tool as a tool_call event of the current run, if any."""
    from kagura.observability.recording import collector

    if collector.current_run() is None:
        return
    arguments = dict(kwargs)
    if args:
        arguments["args"] = list(args)
    extra: dict[str, Any] = {"arguments": arguments}
    if error is not None:
        extra.update(status="failed", error=f"{type(error).__name__}: {error}")
    collector.get_global_telemetry().collector.record_tool_call(
        name, time.perf_counter() - started, **extra
    )


def tool_result_text(result: Any) -> str:
    """The text sent back to the model for a tool's result."""
    if isinstance(result, str):
        return result
    dump = getattr(result, "model_dump_json", None)
    if callable(dump):
        return dump()
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(first paragraph, {param: description}) of a Google-style docstring."""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _ARGS_HEADER.match(line) or _SECTION_HEADER.match(line):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    param_indent = 0
    for line in lines:
        if _ARGS_HEADER.match(line):
            in_args, current = True, None
            continue
        if not in_args or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0 and _SECTION_HEADER.match(line):
            break  # the next section (Returns:, Raises:, ...)
        match = _ARG_LINE.match(line)
        if match and (current is None or indent <= param_indent):
            current, param_indent = match.group(1), indent
            params[current] = match.group(2).strip()
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
    return " ".join(summary), params


def _parameters_schema(fn: Callable[..., Any], docs: dict[str, str]) -> dict[str, Any]:
    """JSON Schema of a function's keyword parameters, through a pydantic model."""
    import inspect

    from pydantic import ConfigDict, create_model

    signature = inspect.signature(fn)
    try:
        import typing

        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in ("self", "cls"):
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(
        f"{getattr(fn, '__name__', 'tool')}_arguments",
        __config__=ConfigDict(arbitrary_types_allowed=True),
        **fields,
    )
    try:
        schema = model.model_json_schema()
    except Exception:  # a type JSON Schema can't express: let the model send anything
        schema = {"type": "object", "properties": {name: {} for name in fields}}
    schema.pop("title", None)
    for name, prop in schema.get("properties", {}).items():
        prop.pop("title", None)
        if docs.get(name):
            prop["description"] = docs[name]
    schema.setdefault("properties", {})
    schema["type"] = "object"
    return schema
