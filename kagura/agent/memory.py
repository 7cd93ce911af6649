"""The conversation an agent with `memory=True` keeps between calls.

Each call loads the past messages into the prompt and stores its own exchange
(the user's prompt and the model's reply). Both steps are recorded as
`memory_operation` events named "load" and "store".
"""

from __future__ import annotations

import threading
from typing import Any


class ConversationMemory:
    """The last `max_messages` messages of one agent's conversation, in order."""

    def __init__(self, max_messages: int = 100):
        if max_messages < 2:
            raise ValueError("max_messages must be at least 2 (one exchange)")
        self.max_messages = max_messages
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def load(self) -> list[dict[str, Any]]:
        """A copy of the stored messages, oldest first."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def store(self, messages: list[dict[str, Any]]) -> None:
        """Append messages, dropping the oldest beyond `max_messages`."""
        with self._lock:
            self._messages.extend(dict(m) for m in messages)
            overflow = len(self._messages) - self.max_messages
            if overflow > 0:
                del self._messages[:overflow]

    def clear(self) -> None:
        """Forget the conversation."""
        with self._lock:
            self._messages.clear()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The stored messages (a copy)."""
        return self.load()

    def __len__(self) -> int:
        return len(self._messages)
