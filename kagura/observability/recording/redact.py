"""What of an agent's arguments may reach the telemetry store.

Values whose names look secret (api_key, token, password, ...) and strings shaped
like provider keys (sk-..., Bearer ..., ghp_..., AKIA...) become "[REDACTED]";
huge values are cut down so one 10 MB argument cannot bloat the store. The rules
are configurable: `add_name_pattern()` and `add_value_pattern()`.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"
MAX_VALUE_CHARS = 64 * 1024  # one string value
MAX_TOTAL_CHARS = 256 * 1024  # all the strings of one cleaned value together
MAX_ITEMS = 1000  # items kept of one list or dict
MAX_DEPTH = 20

# Searched in the lower-cased name, camelCase split by "_" first (accessToken ->
# access_token). `token(?![a-z])` keeps counters like max_tokens and words like
# tokenizer visible while catching token, access_token, x-auth-token.
DEFAULT_NAME_PATTERNS: tuple[str, ...] = (
    r"api[_\-.]?key",
    r"token(?![a-z])",
    r"passw(?:or)?d|passphrase|^pwd$",
    r"secret",
    r"authori[sz]ation|^auth$|auth[_\-.]?header",
    r"credential",
    r"private[_\-.]?key",
    r"cookie",
)

# Shapes of credentials from well-known providers, matched anywhere in a string.
DEFAULT_VALUE_PATTERNS: tuple[str, ...] = (
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic
    r"(?i:bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*",  # HTTP bearer tokens
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key ids
    r"AIza[0-9A-Za-z\-_]{35}",  # Google API keys
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face tokens
    r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWTs
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NAME_CACHE = 4096  # names remembered per rule set


def _alternation(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))


class Redactor:
    """A rule set: secret-looking names, secret-shaped values, size caps."""

    def __init__(
        self,
        name_patterns: tuple[str, ...] = DEFAULT_NAME_PATTERNS,
        value_patterns: tuple[str, ...] = DEFAULT_VALUE_PATTERNS,
        *,
        max_chars: int = MAX_VALUE_CHARS,
        max_total_chars: int = MAX_TOTAL_CHARS,
        max_items: int = MAX_ITEMS,
    ):
        self.max_chars = max_chars
        self.max_total_chars = max_total_chars
        self.max_items = max_items
        self._name_patterns = tuple(name_patterns)
        self._value_patterns = tuple(value_patterns)
        self._compile()

    def _compile(self) -> None:
        # Compiled before assignment so a concurrent reader sees old or new rules, never none.
        names, values = _alternation(self._name_patterns), _alternation(self._value_patterns)
        self._names, self._values = names, values
        self._secret_names: dict[str, bool] = {}  # name -> is_secret_name, for these rules

    @property
    def name_patterns(self) -> tuple[str, ...]:
        """The regexes that mark a name as secret."""
        return self._name_patterns

    @property
    def value_patterns(self) -> tuple[str, ...]:
        """The regexes that mark part of a string as a secret."""
        return self._value_patterns

    def add_name_pattern(self, pattern: str) -> None:
        """Also redact values whose (lower-cased) name matches regex `pattern`."""
        re.compile(pattern)  # a bad regex fails here, with its own message
        self._name_patterns += (pattern,)
        self._compile()

    def add_value_pattern(self, pattern: str) -> None:
        """Also redact every match of regex `pattern` inside string values."""
        re.compile(pattern)
        self._value_patterns += (pattern,)
        self._compile()

    def is_secret_name(self, name: Any) -> bool:
        """True when a value called `name` must not be stored."""
        if not isinstance(name, str) or self._names is None:
            return False
        known = self._secret_names  # the same few names come back on every call
        secret = known.get(name)
        if secret is None:
            secret = self._names.search(_CAMEL.sub("_", name).lower()) is not None
            if len(known) >= _NAME_CACHE:
                known.clear()
            known[name] = secret
        return secret

    def redact_text(self, text: str) -> str:
        """`text` with every secret-shaped part replaced by [REDACTED]."""
        if self._values is None or len(text) < 8:
            return text
        return self._values.sub(REDACTED, text)

    def clean(self, value: Any, name: Any = None) -> Any:
        """A JSON-ready copy of `value`: secrets redacted, huge parts cut down."""
        return self._clean(value, name, 0, [self.max_total_chars])

    def clean_mapping(self, mapping: dict[str, Any] | None) -> dict[str, Any]:
        """A cleaned copy of a mapping of named values (arguments, tags)."""
        if not mapping:
            return {}
        budget = [self.max_total_chars]
        return {str(k): self._clean(v, k, 0, budget) for k, v in mapping.items()}

    def _clean(self, value: Any, name: Any, depth: int, budget: list[int]) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return REDACTED if value is not None and self.is_secret_name(name) else value
        if self.is_secret_name(name):
            return REDACTED
        if isinstance(value, str):
            return self._text(value, budget)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return f"<{len(value)} bytes>"
        if depth >= MAX_DEPTH:
            return "<nested too deep>"
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(value.items()):
                if i >= self.max_items:
                    out["..."] = f"[{len(value) - i} more items]"
                    break
                out[str(k)] = self._clean(v, k, depth + 1, budget)
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            items = list(value) if isinstance(value, (set, frozenset)) else value
            kept = [self._clean(v, None, depth + 1, budget) for v in items[: self.max_items]]
            if len(items) > self.max_items:
                kept.append(f"[{len(items) - self.max_items} more items]")
            return kept
        dumped = _model_dump(value)
        if dumped is not None:
            return self._clean(dumped, None, depth + 1, budget)
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not break the agent
            text = f"<{type(value).__name__}>"
        return self._text(text, budget)

    def _text(self, text: str, budget: list[int]) -> str:
        limit = min(self.max_chars, max(budget[0], 0))
        if len(text) <= limit:
            budget[0] -= len(text)
            return self.redact_text(text)
        # Redact a little past the cut, so a key straddling it is removed whole
        # rather than left as a short, still-matching-nothing prefix.
        cut = len(text) - limit
        kept = self.redact_text(text[: limit + 512])[:limit]
        budget[0] -= len(kept)
        return kept + f"...[truncated {cut} chars]"


def _model_dump(value: Any) -> dict[str, Any] | None:
    """The fields of a pydantic model or dataclass, else None."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            result = dump()
        except Exception:
            return None
        return result if isinstance(result, dict) else None
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None and not isinstance(value, type):
        return {name: getattr(value, name, None) for name in fields}
    return None


# The rule set every recorder uses unless given another.
default_redactor = Redactor()


def add_name_pattern(pattern: str) -> None:
    """Also redact values whose name matches regex `pattern` (default rule set)."""
    default_redactor.add_name_pattern(pattern)


def add_value_pattern(pattern: str) -> None:
    """Also redact matches of regex `pattern` inside strings (default rule set)."""
    default_redactor.add_value_pattern(pattern)


def reset_rules() -> None:
    """Restore the default rule set's built-in patterns."""
    default_redactor._name_patterns = DEFAULT_NAME_PATTERNS
    default_redactor._value_patterns = DEFAULT_VALUE_PATTERNS
    default_redactor._compile()


def clean(value: Any, name: Any = None) -> Any:
    """`value` made safe to store by the default rule set."""
    return default_redactor.clean(value, name)


def clean_mapping(mapping: dict[str, Any] | None) -> dict[str, Any]:
    """A mapping of named values made safe to store by the default rule set."""
    return default_redactor.clean_mapping(mapping)


def redact_text(text: str) -> str:
    """`text` with secret-shaped parts replaced, by the default rule set."""
    return default_redactor.redact_text(text)
