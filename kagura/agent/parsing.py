"""Turning a model's reply into the value an agent's return annotation asks for.

`str` is returned as is; `int`, `float` and `bool` are read from the text; any
other type (list, dict, pydantic models, ...) is validated from JSON, with
```json fences and surrounding prose tolerated.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_NUMBER = re.compile(r"[-+]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


class AgentOutputError(ValueError):
    """A model's reply could not be read as the agent's return type."""


def returns_text(annotation: Any) -> bool:
    """True when the reply is returned as the raw text."""
    import inspect

    return annotation in (inspect.Signature.empty, str, Any, None, type(None))


def type_name(annotation: Any) -> str:
    """A readable name of a return annotation."""
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def format_hint(annotation: Any) -> str:
    """What the prompt adds so the model answers in a parseable form ("" for text)."""
    if returns_text(annotation):
        return ""
    if annotation is bool:
        return "Answer with only true or false."
    if annotation in (int, float):
        return "Answer with only the number."
    try:
        from pydantic import TypeAdapter

        schema = json.dumps(TypeAdapter(annotation).json_schema(), ensure_ascii=False)
    except Exception:  # a type without a JSON Schema: ask for JSON anyway
        return "Answer with only JSON."
    return f"Answer with only JSON matching this JSON Schema: {schema}"


def strip_fences(text: str) -> str:
    """The inside of the first ``` fenced block, or the text itself."""
    match = _FENCE.search(text)
    return match.group(2).strip() if match else text.strip()


def parse_reply(text: str | None, annotation: Any, agent_name: str) -> Any:
    """The reply as `annotation` asks; AgentOutputError naming the agent when it can't be read."""
    text = text or ""
    if returns_text(annotation):
        return text
    body = strip_fences(text)
    try:
        if annotation is bool:
            return _parse_bool(body)
        if annotation is int:
            return _parse_int(body)
        if annotation is float:
            return _parse_float(body)
        return _parse_json(body, annotation)
    except (ValueError, TypeError) as exc:
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise AgentOutputError(
            f"agent {agent_name!r} must return {type_name(annotation)}, but the model's reply "
            f"did not parse ({_short(exc)}): {shown!r}"
        ) from exc


def _short(exc: Exception) -> str:
    first = str(exc).strip().splitlines()
    return first[0] if first else type(exc).__name__


def _parse_bool(body: str) -> bool:
    word = body.strip().strip(".!\"'`").strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    first = re.split(r"[\s,.;:!]+", word, maxsplit=1)[0]
    if first in _TRUE | {"correct"}:
        return True
    if first in _FALSE | {"incorrect"}:
        return False
    raise ValueError("expected true or false")


def _one_number(body: str) -> str:
    """The number in `body`: all of it, or the only number it contains."""
    candidate = body.strip().rstrip(".").strip()
    if _NUMBER.fullmatch(candidate):
        return candidate
    found = _NUMBER.findall(body)
    if len(found) == 1:
        return found[0].rstrip(".")
    raise ValueError("no number" if not found else f"{len(found)} numbers, expected one")


def _parse_int(body: str) -> int:
    number = _one_number(body).replace(",", "").replace("_", "")
    value = float(number)
    if not value.is_integer():
        raise ValueError(f"{number} is not a whole number")
    return int(number) if re.fullmatch(r"[-+]?\d+", number) else int(value)


def _parse_float(body: str) -> float:
    return float(_one_number(body).replace(",", "").replace("_", ""))


def _parse_json(body: str, annotation: Any) -> Any:
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(annotation)
    try:
        return adapter.validate_json(body)
    except ValidationError as first:
        span = _json_span(body)
        if span is not None and span != body:
            try:
                return adapter.validate_json(span)
            except ValidationError:
                pass
        try:  # types that take plain text: Optional[str], Literal["yes", "no"], str enums
            return adapter.validate_python(body)
        except ValidationError:
            pass
        raise ValueError(_validation_message(first)) from None


def _json_span(text: str) -> str | None:
    """The first balanced {...} or [...] in `text` that is valid JSON, if any."""
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "[{":
            try:
                _, end = decoder.raw_decode(text, index)
            except ValueError:
                continue
            return text[index:end]
    return None


def _validation_message(error: Any) -> str:
    errors = error.errors()
    if not errors:
        return str(error)
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "value"
    return f"{where}: {first.get('msg', 'invalid')}"
