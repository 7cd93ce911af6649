"""Agents: `@agent` turns an async function into an LLM call, `@tool` gives it tools.

Importing this package stays light: litellm, jinja2 and pydantic load on the
first agent call, the telemetry store on the first recorded run.
"""

from kagura.agent.core import AgentError, AgentSpec, agent
from kagura.agent.memory import ConversationMemory
from kagura.agent.parsing import AgentOutputError
from kagura.agent.tools import Tool, tool

__all__ = [
    "AgentError",
    "AgentOutputError",
    "AgentSpec",
    "ConversationMemory",
    "Tool",
    "agent",
    "tool",
]
