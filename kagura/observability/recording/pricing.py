"""The cost of an LLM call, offline.

Prices come, in this order, from `set_price()`, from `$KAGURA_HOME/prices.json`
(`{"model": {"input_cost_per_token": x, "output_cost_per_token": y}}`) and from
litellm's bundled price map. A model found in none of them has no price: its
cost is None (unknown), never 0 and never a guess.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from kagura import config

Price = tuple[float, float]  # (input cost per token, output cost per token)

_overrides: dict[str, Price] = {}
_file_cache: dict[str, Any] = {"key": None, "prices": {}}
_lock = threading.Lock()
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def set_price(model: str, input_cost_per_token: float, output_cost_per_token: float) -> None:
    """Use these per-token prices (USD) for `model`, ahead of every other source."""
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string")
    _overrides[model] = (
        _price_value(input_cost_per_token, model),
        _price_value(output_cost_per_token, model),
    )


def clear_prices() -> None:
    """Forget every price given to set_price()."""
    _overrides.clear()


def _price_value(value: Any, model: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= 0
        or value == float("inf")
    ):
        raise ValueError(f"price for {model!r} must be a non-negative number, got {value!r}")
    return float(value)


def prices_path() -> Path:
    """The custom prices file: `$KAGURA_HOME/prices.json`."""
    return config.kagura_home() / config.PRICES_NAME


def _file_prices() -> dict[str, Price]:
    """The prices of prices.json, re-read when the file changes; {} when absent or bad."""
    path = prices_path()
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _file_cache["key"] == key:
        return _file_cache["prices"]
    with _lock:
        prices: dict[str, Price] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("the file must hold one JSON object")
            for model, entry in raw.items():
                prices[model] = (
                    _price_value(entry.get("input_cost_per_token"), model),
                    _price_value(entry.get("output_cost_per_token"), model),
                )
        except (OSError, ValueError, AttributeError) as exc:
            import logging

            logging.getLogger("kagura.telemetry").warning("ignoring %s: %s", path, exc)
            prices = {}
        _file_cache.update(key=key, prices=prices)
        return prices


_bundled: dict[str, Any] = {}


def model_cost_map() -> dict[str, dict[str, Any]]:
    """litellm's price map, offline.

    When litellm is loaded already (an agent is running) its own map is used.
    Otherwise the bundled price file is read as plain JSON: importing litellm
    takes seconds, too much for a receiver or a command pricing ingested spans.
    """
    import sys

    loaded = sys.modules.get("litellm")
    if loaded is not None and hasattr(loaded, "model_cost"):
        return loaded.model_cost
    if "map" not in _bundled:
        with _lock:
            if "map" not in _bundled:
                _bundled["map"] = _read_bundled_map()
    found = _bundled["map"]
    if found is not None:
        return found
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm.model_cost


def _read_bundled_map() -> dict[str, Any] | None:
    """The price file inside the installed litellm package, or None if it can't be read."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("litellm")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations)))
        raw = json.loads(
            (folder / "model_prices_and_context_window_backup.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError, ImportError):
        return None
    return raw if isinstance(raw, dict) else None


def _map_entry(model: str) -> dict[str, Any] | None:
    """The price-map entry litellm would use for `model` ("openai/gpt-4o" -> "gpt-4o")."""
    cost_map = model_cost_map()
    entry = cost_map.get(model)
    if entry is None and "/" in model:
        provider, _, rest = model.partition("/")
        candidate = cost_map.get(rest)
        # Only when the provider agrees: "openai/foo" must not borrow another vendor's "foo".
        if candidate is not None and candidate.get("litellm_provider") == provider:
            entry = candidate
    if (
        entry is None
        or entry.get("input_cost_per_token") is None
        or entry.get("output_cost_per_token") is None
    ):
        return None
    return entry


def price(model: str) -> Price | None:
    """(input, output) cost per token of `model`, or None when no source knows it."""
    if model in _overrides:
        return _overrides[model]
    file_prices = _file_prices()
    if model in file_prices:
        return file_prices[model]
    entry = _map_entry(model)
    if entry is None:
        return None
    return float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])


def cost(
    model: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    cached_tokens: int | None = None,
) -> float | None:
    """The USD cost of one call, or None when the model has no known price.

    Map prices follow litellm's tiers (a prompt above a tier's size is charged
    that tier's prices) and its cached-input price when `cached_tokens` is given.
    """
    if not model:
        return None
    priced = cost_function(model)
    return None if priced is None else priced(prompt_tokens, completion_tokens, cached_tokens)


def cost_function(model: str) -> Any:
    """`f(prompt_tokens, completion_tokens, cached_tokens) -> USD` for `model`, its price source
    looked up once (for many calls of one model); None when the model has no known price."""
    custom = _overrides.get(model) or _file_prices().get(model)
    if custom is not None:
        input_price, output_price = custom

        def linear(prompt: int | None, completion: int | None, cached: int | None = None) -> float:
            return (prompt or 0) * input_price + (completion or 0) * output_price

        return linear
    entry = _map_entry(model)
    if entry is None:
        return None
    return lambda prompt, completion, cached=None: _map_cost(
        entry, prompt or 0, completion or 0, cached
    )


def _map_cost(
    entry: dict[str, Any], prompt: int, completion: int, cached_tokens: int | None
) -> float:
    input_price = float(entry["input_cost_per_token"])
    output_price = float(entry["output_cost_per_token"])
    tier = _tier(entry, prompt)
    if tier is not None:
        input_price = float(entry.get(f"input_cost_per_token_above_{tier}k_tokens", input_price))
        output_price = float(entry.get(f"output_cost_per_token_above_{tier}k_tokens", output_price))
    cached = min(cached_tokens or 0, prompt)
    cache_price = entry.get("cache_read_input_token_cost")
    if cached and cache_price is not None:
        if tier is not None:
            cache_price = entry.get(
                f"cache_read_input_token_cost_above_{tier}k_tokens", cache_price
            )
        return (
            (prompt - cached) * input_price
            + cached * float(cache_price)
            + completion * output_price
        )
    return prompt * input_price + completion * output_price


def _tier(entry: dict[str, Any], prompt_tokens: int) -> int | None:
    """The largest `above_Nk_tokens` tier that `prompt_tokens` exceeds, if any."""
    best = None
    for key in entry:
        match = _TIER.match(key)
        if match:
            size = int(match.group(1))
            if prompt_tokens > size * 1000 and (best is None or size > best):
                best = size
    return best
