"""The attribute names both directions share, and how store ids become OTLP ids and back.

Spans follow the OpenTelemetry GenAI conventions (`gen_ai.*`, status
"Development") and carry the OpenInference twins Phoenix reads first. Cost goes
out as `gen_ai.usage.cost.amount` / `.currency`, the names proposed in
semantic-conventions-genai PR 443 (not yet in the registry). `kagura.*`
attributes carry what the conventions have no name for, so an exported file
ingests back into the same runs.
"""

from __future__ import annotations

import hashlib

# Span kinds (opentelemetry.proto.trace.v1.Span.SpanKind) and status codes.
KIND_INTERNAL = 1
KIND_CLIENT = 3
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

SCOPE_NAME = "kagura"

# gen_ai.operation.name values, by what they become in the store.
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
WORKFLOW_OPERATIONS = frozenset({"invoke_workflow"})
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
TOOL_OPERATIONS = frozenset({"execute_tool"})
MEMORY_OPERATIONS = frozenset(
    {"search_memory", "create_memory", "update_memory", "upsert_memory", "delete_memory"}
)
# openinference.span.kind values.
OI_AGENT = frozenset({"AGENT"})
OI_LLM = frozenset({"LLM", "EMBEDDING"})
OI_TOOL = frozenset({"TOOL"})
OI_MEMORY = frozenset({"RETRIEVER"})

# The store's memory operations ("load", "store") under the conventions' names.
MEMORY_OPERATION_NAMES = {
    "load": "search_memory",
    "search": "search_memory",
    "recall": "search_memory",
    "store": "upsert_memory",
    "save": "upsert_memory",
    "create": "create_memory",
    "update": "update_memory",
    "delete": "delete_memory",
}

# Integer attributes, by every name a framework may use for them (first found wins).
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
TOTAL_TOKENS = ("llm.token_count.total",)
CACHED_TOKENS = ("gen_ai.usage.cache_read.input_tokens",)
COST = ("gen_ai.usage.cost.amount", "llm.cost.total")
REQUEST_MODEL = ("gen_ai.request.model", "llm.model_name", "gen_ai.response.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
AGENT_NAME = ("gen_ai.agent.name", "agent.name")
TOOL_NAME = ("gen_ai.tool.name", "tool.name")
SESSION = ("gen_ai.conversation.id", "session.id")
USER = "user.id"
# A run's tags and metadata, each one JSON object as text (OpenInference's `metadata`).
TAGS = "kagura.tags"
METADATA = "metadata"
EMPTY_JSON = frozenset({"{}", "null", "[]"})

# Values that must have one type; a span holding another type there is rejected.
INT_KEYS = frozenset(INPUT_TOKENS + OUTPUT_TOKENS + TOTAL_TOKENS + CACHED_TOKENS) | {
    "kagura.event.seq"
}
NUMBER_KEYS = frozenset(COST)
BOOL_KEYS = frozenset({"kagura.cost.known"})
STRING_KEYS = frozenset(
    REQUEST_MODEL
    + PROVIDER
    + AGENT_NAME
    + TOOL_NAME
    + SESSION
    + (
        "gen_ai.operation.name",
        "gen_ai.usage.cost.currency",
        "openinference.span.kind",
        "error.type",
        "kagura.execution.id",
        "kagura.parent.id",
        "kagura.trace.id",
        "kagura.status",
        "kagura.event.type",
        "kagura.event.name",
        "gen_ai.tool.call.id",
        "gen_ai.response.model",
        "kagura.memory.operation",
    )
)

_HEX = frozenset("0123456789abcdef")


def is_hex(text: str, length: int) -> bool:
    """True when `text` is `length` lowercase hex digits."""
    return len(text) == length and not (set(text) - _HEX)


def trace_hex(trace_id: str) -> str:
    """The 32-hex OTLP trace id of a store trace id.

    Store ids (`exec_` + 28 hex digits) are padded with four zeros and trace ids
    ingested from OTLP are kept as 32 hex digits, so both map back exactly;
    any other text is hashed (md5, as sql/otlp_spans.sql does).
    """
    if len(trace_id) == 33 and trace_id.startswith("exec_") and is_hex(trace_id[5:], 28):
        return "0000" + trace_id[5:]
    if is_hex(trace_id, 32):
        return trace_id
    return hashlib.md5(trace_id.encode("utf-8", "surrogatepass")).hexdigest()


def store_trace_id(hex32: str) -> str:
    """The store trace id of an OTLP trace id (the inverse of trace_hex)."""
    if hex32.startswith("0000"):
        return "exec_" + hex32[4:]
    return hex32


def span_hex(execution_id: str) -> str:
    """The 16-hex OTLP span id of an execution: the 64 random bits of a store id."""
    if (
        len(execution_id) == 33
        and execution_id.startswith("exec_")
        and is_hex(execution_id[17:], 16)
    ):
        return execution_id[17:]
    if (
        len(execution_id) == 21
        and execution_id.startswith("otel_")
        and is_hex(execution_id[5:], 16)
    ):
        return execution_id[5:]
    return hashlib.md5(execution_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def event_span_hex(execution_id: str, seq: int) -> str:
    """A span id for one event, the same on every export."""
    return hashlib.md5(f"{execution_id}/{seq}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def span_execution_id(span_id: str) -> str:
    """The execution id a foreign span becomes (the same span always gives the same id)."""
    return "otel_" + span_id


def memory_operation_name(operation: str | None) -> str:
    """The gen_ai.operation.name of one of the store's memory operations."""
    if operation in MEMORY_OPERATIONS:
        return operation
    return MEMORY_OPERATION_NAMES.get((operation or "").lower(), "search_memory")


def provider_of(model: str | None) -> str | None:
    """The provider a litellm model name starts with ("openai/gpt-4o" -> "openai")."""
    if model and "/" in model:
        return model.split("/", 1)[0]
    if model and model.startswith(("gpt-", "o1", "o3", "o4", "text-embedding")):
        return "openai"
    if model and model.startswith("claude"):
        return "anthropic"
    if model and model.startswith("gemini"):
        return "gcp.gemini"
    return None
