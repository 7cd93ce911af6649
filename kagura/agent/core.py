"""`@agent`: an async function whose docstring is the prompt and whose annotation is the answer.

A call renders the docstring (a Jinja2 template) with the call's arguments, asks
the model through `litellm.acompletion` (running the tool loop when the agent has
tools), and returns the reply as the return annotation asks. Every call is
recorded by the global telemetry: the run, its LLM calls, tool calls and memory.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from kagura.agent.memory import ConversationMemory
from kagura.agent.parsing import AgentOutputError, format_hint, parse_reply
from kagura.agent.tools import Tool, as_tool, tool_result_text
from kagura.observability.recording import content as content_capture
from kagura.observability.recording import context as run_context
from kagura.observability.recording.collector import TelemetryCollector, get_global_telemetry

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_MAX_ITERATIONS = 10

__all__ = ["AgentError", "AgentOutputError", "AgentSpec", "agent"]


class AgentError(RuntimeError):
    """An agent is misconfigured, or its tool loop did not finish."""


def _litellm() -> Any:
    """litellm, imported on the first call, with its bundled (offline) price map."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


class AgentSpec:
    """Everything one `@agent` function needs to run: prompt, model, tools, memory."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        tools: Sequence[Any] | None,
        memory: bool | ConversationMemory,
        name: str | None,
        max_iterations: int,
        litellm_kwargs: dict[str, Any],
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        capture_content: bool | None = None,
    ):
        import inspect  # here, not at import: `import kagura` stays light

        self.fn = fn
        self.name = name or fn.__name__
        if not isinstance(model, str) or not model:
            raise AgentError(
                f"agent {self.name!r}: model must be a model name such as 'gpt-4o-mini'"
            )
        doc = inspect.getdoc(fn)
        if not doc:
            raise AgentError(
                f"agent {self.name!r} has no docstring: its docstring is the prompt template"
            )
        if max_iterations < 1:
            raise AgentError(f"agent {self.name!r}: max_iterations must be at least 1")
        self.template_source = doc
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.tools: list[Tool] = [as_tool(t) for t in tools or ()]
        names = [t.name for t in self.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AgentError(f"agent {self.name!r}: two tools are named {', '.join(duplicates)}")
        self.tool_map = {t.name: t for t in self.tools}
        if isinstance(memory, ConversationMemory):
            self.memory: ConversationMemory | None = memory
        else:
            self.memory = ConversationMemory() if memory else None
        self.max_iterations = max_iterations
        self.litellm_kwargs = dict(litellm_kwargs)
        self.capture_content = capture_content
        try:
            self.tags = run_context.check_tags(tags)
            self.metadata = run_context.check_metadata(metadata)
        except ValueError as exc:
            raise AgentError(f"agent {self.name!r}: {exc}") from None
        self.signature = inspect.signature(fn)
        self._template: Any = None
        self._annotation: Any = None
        self._hint: str | None = None

    # -- prepared on the first call, so decorating stays cheap --

    @property
    def return_annotation(self) -> Any:
        """The function's return annotation, forward references resolved."""
        if self._annotation is None:
            annotation = self.signature.return_annotation
            try:
                import typing

                annotation = typing.get_type_hints(self.fn).get("return", annotation)
            except Exception:
                pass  # keep the raw annotation; parsing names it if it can't be used
            self._annotation = annotation
        return self._annotation

    def render(self, arguments: dict[str, Any], *, compile_only: bool = False) -> str:
        """The prompt: the docstring rendered with the call's arguments."""
        if self._template is None:
            import jinja2

            env = jinja2.Environment(
                undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
            )
            try:
                self._template = env.from_string(self.template_source)
            except jinja2.TemplateSyntaxError as exc:
                raise AgentError(
                    f"agent {self.name!r}: its docstring is not a valid Jinja2 template: {exc}"
                ) from None
        if compile_only:
            return ""
        try:
            return self._template.render(**arguments)
        except Exception as exc:
            raise AgentError(f"agent {self.name!r}: rendering its prompt failed: {exc}") from exc

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults applied (TypeError for a bad call)."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def prepare(self) -> Any:
        """litellm, with the template and format hint ready (first call: imports, before timing)."""
        litellm = _litellm()
        if self._hint is None:
            self._hint = format_hint(self.return_annotation)
        if self._template is None:
            self.render({name: None for name in self.signature.parameters}, compile_only=True)
        return litellm

    # -- content capture (opt-in) --

    def _content(self, collector: TelemetryCollector, value: Any) -> str:
        """`value` redacted and capped for the record (recording.content)."""
        return content_capture.capture(value, collector.redactor)

    # -- one call --

    async def run(self, arguments: dict[str, Any], collector: TelemetryCollector) -> Any:
        """The agent's answer for `arguments`, recording into the current run."""
        prompt = self.render(arguments)
        if self._hint:
            prompt = f"{prompt}\n\n{self._hint}"
        user = {"role": "user", "content": prompt}
        messages: list[dict[str, Any]] = []
        if self.memory is not None:
            started = time.perf_counter()
            history = self.memory.load()
            collector.record_memory_operation(
                "load", time.perf_counter() - started, messages=len(history)
            )
            messages.extend(history)
        messages.append(user)
        capture = content_capture.enabled(self.capture_content)
        reply = await self._complete(messages, collector, capture)
        if self.memory is not None:
            started = time.perf_counter()
            self.memory.store([user, {"role": "assistant", "content": reply}])
            collector.record_memory_operation("store", time.perf_counter() - started, messages=2)
        result = parse_reply(reply, self.return_annotation, self.name)
        if capture:
            collector.record_event(
                "output", name="return_value", content=self._content(collector, result)
            )
        return result

    async def _complete(
        self, messages: list[dict[str, Any]], collector: TelemetryCollector, capture: bool = False
    ) -> str:
        """The model's final text, after as many tool rounds as it asks for."""
        litellm = self.prepare()
        params: dict[str, Any] = dict(self.litellm_kwargs)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.tools:
            params["tools"] = [t.schema for t in self.tools]
        for _ in range(self.max_iterations):
            response = await self._call_model(litellm, messages, params, collector, capture)
            message = response.choices[0].message
            calls = getattr(message, "tool_calls", None) or []
            if not calls or not self.tools:
                return message.content or ""
            messages.append(
                {
                    "role": "assistant",
                    "content": message.content,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.function.name,
                                "arguments": call.function.arguments,
                            },
                        }
                        for call in calls
                    ],
                }
            )
            for call in calls:
                content = await self._call_tool(call, collector, capture)
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.function.name,
                        "content": content,
                    }
                )
        raise AgentError(
            f"agent {self.name!r}: the model still asked for tools after {self.max_iterations} calls; "
            "raise max_iterations or check the tools' results"
        )

    async def _call_model(
        self,
        litellm: Any,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        collector: TelemetryCollector,
        capture: bool = False,
    ) -> Any:
        """One acompletion call, recorded as an llm_call event (also when it fails)."""
        from kagura.observability.recording import pricing

        started = time.perf_counter()
        try:
            response = await litellm.acompletion(model=self.model, messages=messages, **params)
        except Exception as exc:
            # An error reply bills no tokens: cost 0 for a priced model, unknown otherwise.
            collector.record_llm_call(
                self.model,
                None,
                None,
                time.perf_counter() - started,
                cost=pricing.cost(self.model, 0, 0),
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                **({"prompt": self._content(collector, messages)} if capture else {}),
            )
            raise
        duration = time.perf_counter() - started
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) if details is not None else None
        cost = None
        if prompt_tokens is not None or completion_tokens is not None:
            cost = pricing.cost(self.model, prompt_tokens, completion_tokens, cached_tokens=cached)
        choice = response.choices[0]
        captured: dict[str, Any] = {}
        if capture:
            message = choice.message
            calls = getattr(message, "tool_calls", None)
            captured["prompt"] = self._content(collector, messages)
            captured["reply"] = self._content(
                collector,
                message.content
                if not calls
                else {
                    "content": message.content,
                    "tool_calls": [
                        {"name": c.function.name, "arguments": c.function.arguments} for c in calls
                    ],
                },
            )
        collector.record_llm_call(
            self.model,
            prompt_tokens,
            completion_tokens,
            duration,
            cost=cost,
            finish_reason=getattr(choice, "finish_reason", None),
            **captured,
        )
        return response

    async def _call_tool(self, call: Any, collector: TelemetryCollector, capture: bool) -> str:
        """The text of one tool call's result; a tool's exception becomes the result."""
        name = call.function.name
        raw = call.function.arguments
        arguments: Any = raw
        error: str | None = None
        started = time.perf_counter()
        try:
            tool = self.tool_map.get(name)
            if tool is None:
                raise AgentError(
                    f"no tool named {name!r}; the tools are: {', '.join(self.tool_map)}"
                )
            arguments = json.loads(raw) if raw else {}
            if not isinstance(arguments, dict):
                raise ValueError(
                    f"tool arguments must be a JSON object, got {type(arguments).__name__}"
                )
            content = tool_result_text(await tool.invoke(arguments))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            content = f"Error: {error}"
        fields: dict[str, Any] = {"arguments": arguments}
        if capture:
            fields["result"] = self._content(collector, content)
        if error is not None:
            fields.update(status="failed", error=error)
        collector.record_tool_call(name, time.perf_counter() - started, **fields)
        return content


def agent(
    model: Any = DEFAULT_MODEL,
    temperature: float | None = None,
    max_tokens: int | None = None,
    tools: Sequence[Any] | None = None,
    memory: bool | ConversationMemory = False,
    name: str | None = None,
    *,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    tags: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    capture_content: bool | None = None,
    **litellm_kwargs: Any,
) -> Any:
    """Turn an `async def` whose docstring is a Jinja2 prompt into an LLM agent.

    `@agent(model="gpt-4o-mini")` or bare `@agent`. `tags` and `metadata` are
    recorded with every run (with those of `kagura.context`). `capture_content=True`
    (or KAGURA_CAPTURE_CONTENT=1 when left None) records prompts, replies, tool
    results and the return value, redacted and capped (recording/content.py). Other keyword
    arguments go to `litellm.acompletion` unchanged (api_base, api_key,
    mock_response, timeout, ...).
    """
    if callable(model) and not isinstance(model, str):
        return agent()(model)

    def decorate(fn: Callable[..., Any]) -> Any:
        import inspect

        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@agent needs an async function: declare {getattr(fn, '__name__', fn)!r} with 'async def'"
            )
        spec = AgentSpec(
            fn,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            memory=memory,
            name=name,
            max_iterations=max_iterations,
            litellm_kwargs=litellm_kwargs,
            tags=tags,
            metadata=metadata,
            capture_content=capture_content,
        )

        @functools.wraps(fn)
        async def run_agent(*args: Any, **kwargs: Any) -> Any:
            arguments = spec.bind(args, kwargs)
            spec.prepare()  # the first call's imports are not part of its recorded duration
            collector = get_global_telemetry().collector
            # The run is committed (awaited, the loop goes on) before the call returns.
            async with collector.arecording(
                spec.name, arguments, model=spec.model, tags=spec.tags, metadata=spec.metadata
            ):
                return await spec.run(arguments, collector)

        run_agent.agent = spec  # type: ignore[attr-defined]
        run_agent.agent_name = spec.name  # type: ignore[attr-defined]
        run_agent.memory = spec.memory  # type: ignore[attr-defined]
        return run_agent

    return decorate
