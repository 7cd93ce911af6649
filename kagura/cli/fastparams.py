"""Plain conversion for simple options, so a command does not import pydantic to read `--limit 20`.

Recent typer versions coerce every option through a pydantic TypeAdapter: about
100 ms of imports before any command runs. Our options are str, int, float, bool
and Path (or None); this converts those directly, checks `min`/`max`, and leaves
every other annotation to typer. With a typer that has no such layer it does nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

_SIMPLE = (str, int, float, bool, Path)
_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _simple_kind(annotation: Any) -> type | None:
    """The one simple type an annotation stands for (`int`, `str | None`, ...), else None."""
    if annotation in _SIMPLE:
        return annotation
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        if len(args) == 1 and args[0] in _SIMPLE:
            return args[0]
    return None


def install() -> None:
    """Route simple options of every typer command through the plain converter."""
    try:
        from typer import core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:  # a typer without the pydantic layer: nothing to do
        return
    original = getattr(core, "build_runtime_param", None)
    if original is None or getattr(original, "kagura_plain", False):
        return

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        kind: type = str

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self.kind
            if kind is bool:
                flag = (
                    _BOOLEANS.get(str(value).strip().lower())
                    if not isinstance(value, bool)
                    else value
                )
                if flag is None:
                    raise BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)
                return flag
            if isinstance(value, kind) and not isinstance(value, bool):
                result = value
            else:
                try:
                    result = kind(value)
                except (TypeError, ValueError):
                    raise BadParameter(
                        f"{value!r} is not a valid {kind.__name__}.", ctx=ctx, param=param
                    ) from None
            if isinstance(result, float) and not math.isfinite(result):
                raise BadParameter(f"{value!r} is not a finite number.", ctx=ctx, param=param)
            info = self.parameter_info
            low, high = getattr(info, "min", None), getattr(info, "max", None)
            if (low is not None and result < low) or (high is not None and result > high):
                bounds = " and ".join(
                    text
                    for text in (
                        f"x>={low}" if low is not None else "",
                        f"x<={high}" if high is not None else "",
                    )
                    if text
                )
                raise BadParameter(f"{value} is not in the range {bounds}.", ctx=ctx, param=param)
            return result

    def build_runtime_param(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        kind = _simple_kind(descriptor.annotation)
        plain = (
            kind is not None
            and descriptor.file_annotation is None
            and getattr(info, "parser", None) is None
            and not getattr(info, "clamp", False)
            and not (
                kind is Path
                and (getattr(info, "exists", False) or getattr(info, "resolve_path", False))
            )
        )
        if not plain or kind is None:
            return original(descriptor)
        return PlainParam(parameter_info=info, annotation=descriptor.annotation, kind=kind)

    build_runtime_param.kagura_plain = True  # type: ignore[attr-defined]
    core.build_runtime_param = build_runtime_param
