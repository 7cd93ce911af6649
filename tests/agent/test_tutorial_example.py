"""The tutorial's "Complete Example: Monitoring Integration", run as printed against the local server."""

from __future__ import annotations

import os
import subprocess
import sys

import litellm
import pytest

from kagura.observability import EventStore

# Verbatim from the tutorial (15-observability.md, "Complete Example").
EXAMPLE = """\
import asyncio
from kagura import agent
from kagura.observability import EventStore, Dashboard


@agent(model="gpt-4o-mini")
async def translator(text: str, target_lang: str) -> str:
    \'\'\'Translate "{{ text }}" to {{ target_lang }}\'\'\'
    pass


async def main():
    # Run agent multiple times
    translations = [
        ("Hello", "French"),
        ("Goodbye", "Japanese"),
        ("Thank you", "Spanish"),
    ]

    for text, lang in translations:
        result = await translator(text, target_lang=lang)
        print(f"{text} → {lang}: {result}")

    # Analyze telemetry
    store = EventStore()
    dashboard = Dashboard(store)

    print("\\n" + "=" * 50)
    print("TELEMETRY ANALYSIS")
    print("=" * 50 + "\\n")

    # Show statistics
    dashboard.show_stats(agent_name="translator")

    # Show execution list
    dashboard.show_list(agent_name="translator", limit=10)


if __name__ == "__main__":
    asyncio.run(main())
"""

REPLIES = {"French": "Bonjour", "Japanese": "Sayonara", "Spanish": "Gracias"}


def test_complete_example_runs_end_to_end(llm, tmp_path, kagura_home):
    def reply(request):
        prompt = request["messages"][-1]["content"]
        lang = prompt.rsplit(" ", 1)[-1]
        return llm.text(REPLIES[lang], prompt_tokens=len(prompt), completion_tokens=3)

    llm.default = reply
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE, encoding="utf-8")
    # litellm sends "gpt-4o-mini" to OPENAI_BASE_URL: the local server stands in for OpenAI.
    env = {
        **os.environ,
        "KAGURA_HOME": str(kagura_home),
        "OPENAI_BASE_URL": llm.url,
        "OPENAI_API_KEY": "sk-local-test-0000000000000000",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "COLUMNS": "120",
        "PYTHONIOENCODING": "utf-8",
    }
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Hello → French: Bonjour" in out
    assert "Goodbye → Japanese: Sayonara" in out
    assert "Thank you → Spanish: Gracias" in out
    assert "TELEMETRY ANALYSIS" in out
    assert "Total Executions: 3" in out
    assert "Completed: 3" in out
    assert "LLM Calls: 3" in out
    history = out.split("TELEMETRY ANALYSIS", 1)[1]
    assert (
        sum(1 for line in history.splitlines() if "translator" in line and "COMPLETED" in line) == 3
    )

    prompts = [r["messages"][-1]["content"] for r in llm.requests]
    assert prompts == [
        'Translate "Hello" to French',
        'Translate "Goodbye" to Japanese',
        'Translate "Thank you" to Spanish',
    ]
    assert {r["model"] for r in llm.requests} == {"gpt-4o-mini"}

    # The same three runs, read back independently, priced from litellm's map.
    entry = litellm.model_cost["gpt-4o-mini"]
    runs = sorted(
        EventStore().get_executions(agent_name="translator"), key=lambda r: r["started_at"]
    )
    assert [r["kwargs"] for r in runs] == [
        {"text": "Hello", "target_lang": "French"},
        {"text": "Goodbye", "target_lang": "Japanese"},
        {"text": "Thank you", "target_lang": "Spanish"},
    ]
    for run, prompt in zip(runs, prompts, strict=True):
        expected = len(prompt) * entry["input_cost_per_token"] + 3 * entry["output_cost_per_token"]
        assert run["status"] == "completed"
        assert run["metrics"]["total_cost"] == pytest.approx(expected, rel=1e-12)
        assert run["metrics"]["total_tokens"] == len(prompt) + 3
