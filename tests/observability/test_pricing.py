"""Cost of a call: litellm's bundled price map, prices.json, set_price, and unknown models."""

from __future__ import annotations

import json
import logging
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

from kagura.observability.recording import pricing  # noqa: E402
from kagura.synthetic import fixtures  # noqa: E402


@pytest.fixture(autouse=True)
def no_overrides():
    pricing.clear_prices()
    yield
    pricing.clear_prices()


def map_price(model: str) -> tuple[float, float]:
    entry = litellm.model_cost[model]
    return entry["input_cost_per_token"], entry["output_cost_per_token"]


@pytest.mark.parametrize("slot", sorted(fixtures.MODEL_CANDIDATES))
def test_fixture_models_cost_what_the_price_map_says(slot):
    model = fixtures.resolve_models()[slot]
    inp, out = map_price(model)
    for prompt, completion in [(0, 0), (1, 0), (0, 1), (1234, 567), (100_000, 4_000)]:
        assert pricing.cost(model, prompt, completion) == pytest.approx(
            prompt * inp + completion * out, rel=1e-12
        )
    assert pricing.price(model) == (inp, out)


def test_agrees_with_litellms_own_calculation_on_tiers_and_cache():
    tiered = next(
        name
        for name, entry in litellm.model_cost.items()
        if entry.get("input_cost_per_token_above_200k_tokens")
        and entry.get("output_cost_per_token_above_200k_tokens")
        and entry.get("input_cost_per_token")
        and not any("_above_" in k and "200k" not in k for k in entry)
    )
    entry = litellm.model_cost[tiered]
    # Above the tier, every token is charged at the tier's price.
    expected = (
        250_000 * entry["input_cost_per_token_above_200k_tokens"]
        + 1_000 * entry["output_cost_per_token_above_200k_tokens"]
    )
    assert pricing.cost(tiered, 250_000, 1_000) == pytest.approx(expected, rel=1e-12)
    assert pricing.cost(tiered, 250_000, 1_000) == pytest.approx(
        sum(litellm.cost_per_token(model=tiered, prompt_tokens=250_000, completion_tokens=1_000)),
        rel=1e-12,
    )

    gpt4o = litellm.model_cost["gpt-4o"]
    expected = (
        6_000 * gpt4o["input_cost_per_token"]
        + 4_000 * gpt4o["cache_read_input_token_cost"]
        + 100 * gpt4o["output_cost_per_token"]
    )
    assert pricing.cost("gpt-4o", 10_000, 100, cached_tokens=4_000) == pytest.approx(
        expected, rel=1e-12
    )


def test_unknown_models_have_no_price():
    for model in ["openai/my-private-model", "local/llama-3.1-8b-instruct", "totally-unknown", ""]:
        assert pricing.cost(model, 100, 100) is None
    assert pricing.price("openai/my-private-model") is None
    assert pricing.cost(None, 1, 1) is None


def test_provider_prefix_is_read_as_litellm_reads_it():
    inp, out = map_price("gpt-4o-mini")
    assert pricing.cost("openai/gpt-4o-mini", 100, 10) == pytest.approx(100 * inp + 10 * out)
    # Another provider's prefix does not borrow OpenAI's price.
    assert pricing.cost("anthropic/gpt-4o-mini", 100, 10) is None


def test_set_price_wins_over_the_map_and_can_be_cleared():
    pricing.set_price("openai/my-private-model", 1e-6, 2e-6)
    assert pricing.cost("openai/my-private-model", 1000, 500) == pytest.approx(
        1000 * 1e-6 + 500 * 2e-6
    )
    pricing.set_price("gpt-4o-mini", 0.0, 0.0)
    assert pricing.cost("gpt-4o-mini", 1000, 500) == 0.0
    pricing.clear_prices()
    assert pricing.cost("openai/my-private-model", 1000, 500) is None


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "1e-6", None, True])
def test_set_price_refuses_bad_prices(bad):
    with pytest.raises(ValueError, match="non-negative number"):
        pricing.set_price("m", bad, 1e-6)


def test_prices_file_in_kagura_home(kagura_home):
    kagura_home.mkdir(parents=True)
    path = kagura_home / "prices.json"
    path.write_text(
        json.dumps(
            {"openai/house-model": {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6}}
        )
    )
    assert pricing.prices_path() == path
    assert pricing.cost("openai/house-model", 100, 100) == pytest.approx(100 * 3e-6 + 100 * 4e-6)
    # An edit is picked up; set_price still wins.
    path.write_text(
        json.dumps(
            {
                "openai/house-model": {"input_cost_per_token": 5e-6, "output_cost_per_token": 4e-6},
                "x": {"input_cost_per_token": 0, "output_cost_per_token": 0},
            }
        )
    )
    os.utime(path, ns=(1, 10**18))
    assert pricing.cost("openai/house-model", 100, 0) == pytest.approx(100 * 5e-6)
    pricing.set_price("openai/house-model", 1e-6, 1e-6)
    assert pricing.cost("openai/house-model", 100, 0) == pytest.approx(100 * 1e-6)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"m": {"input_cost_per_token": -1, "output_cost_per_token": 0}}),
        json.dumps({"m": 3}),
    ],
)
def test_a_bad_prices_file_is_ignored_with_a_warning(kagura_home, caplog, content):
    kagura_home.mkdir(parents=True)
    (kagura_home / "prices.json").write_text(content)
    with caplog.at_level(logging.WARNING, logger="kagura.telemetry"):
        assert pricing.cost("m", 10, 10) is None
        assert pricing.cost("gpt-4o", 1, 0) == pytest.approx(map_price("gpt-4o")[0])
    assert any("prices.json" in r.getMessage() for r in caplog.records)
