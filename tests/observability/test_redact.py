"""What may reach the store: secret names and shapes redacted, huge values cut down, rules configurable."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kagura.observability.recording import redact
from kagura.observability.recording.redact import REDACTED, Redactor


@pytest.fixture(autouse=True)
def default_rules():
    redact.reset_rules()
    yield
    redact.reset_rules()


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apiKey",
        "OPENAI_API_KEY",
        "x-api-key",
        "token",
        "access_token",
        "refreshToken",
        "password",
        "db_passwd",
        "client_secret",
        "Authorization",
        "auth",
        "credentials",
        "private_key",
        "session_cookie",
    ],
)
def test_secret_names_are_redacted(name):
    assert redact.clean_mapping({name: "value-123"}) == {name: REDACTED}


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "prompt_tokens",
        "tokenizer",
        "text",
        "author",
        "authority_level",
        "keyboard",
        "monkey",
        "query",
    ],
)
def test_ordinary_names_are_kept(name):
    assert redact.clean_mapping({name: "value-123"}) == {name: "value-123"}


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "sk-abcdefghijklmnopqrstuvwx",
        "Bearer abcdef123456789",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "AKIAIOSFODNN7EXAMPLE",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "xoxb-1234567890-abcdefghij",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEF",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_key_shaped_strings_are_redacted_wherever_they_appear(secret):
    assert redact.clean(secret) == REDACTED
    assert redact.clean(f"use {secret} please") == f"use {REDACTED} please"
    assert redact.clean_mapping({"notes": ["a", {"deep": f"x {secret}"}]}) == {
        "notes": ["a", {"deep": f"x {REDACTED}"}]
    }


def test_ordinary_strings_are_kept():
    for text in [
        "sk-short",
        "ask-me-anything",
        "Bearer",
        "a bearer of news",
        "AKIA",
        "hello world",
    ]:
        assert redact.clean(text) == text


def test_nested_names_numbers_and_none():
    value = {
        "headers": {"Authorization": "Basic abc", "Accept": "json"},
        "api_key": None,
        "password": 1234,
        "n": 5,
    }
    assert redact.clean_mapping(value) == {
        "headers": {"Authorization": REDACTED, "Accept": "json"},
        "api_key": None,  # nothing to hide
        "password": REDACTED,
        "n": 5,
    }


def test_rules_are_configurable():
    assert redact.clean_mapping({"ssn": "123-45-6789", "note": "id EMP-99812"}) == {
        "ssn": "123-45-6789",
        "note": "id EMP-99812",
    }
    redact.add_name_pattern(r"^ssn$")
    redact.add_value_pattern(r"EMP-\d{5}")
    assert redact.clean_mapping({"ssn": "123-45-6789", "note": "id EMP-99812"}) == {
        "ssn": REDACTED,
        "note": f"id {REDACTED}",
    }
    with pytest.raises(re.error):
        redact.add_name_pattern("(unclosed")
    redact.reset_rules()
    assert redact.clean_mapping({"ssn": "1"}) == {"ssn": "1"}


def test_an_empty_rule_set_redacts_nothing():
    bare = Redactor(name_patterns=(), value_patterns=())
    assert bare.clean_mapping({"api_key": "sk-abcdefghijklmnopqrstuvwx"}) == {
        "api_key": "sk-abcdefghijklmnopqrstuvwx"
    }


def test_huge_values_are_cut_down():
    text = "a" * 10_000_000
    cleaned = redact.clean(text)
    assert (
        cleaned
        == "a" * redact.MAX_VALUE_CHARS
        + f"...[truncated {10_000_000 - redact.MAX_VALUE_CHARS} chars]"
    )
    many = list(range(5000))
    assert redact.clean(many) == list(range(redact.MAX_ITEMS)) + [
        f"[{5000 - redact.MAX_ITEMS} more items]"
    ]
    wide = {f"k{i}": i for i in range(1500)}
    cleaned_wide = redact.clean(wide)
    assert len(cleaned_wide) == redact.MAX_ITEMS + 1
    assert cleaned_wide["..."] == "[500 more items]"
    assert redact.clean(b"\x00" * 4096) == "<4096 bytes>"


def test_total_size_of_one_value_is_bounded():
    small = Redactor(max_chars=100, max_total_chars=250)
    cleaned = small.clean_mapping({f"k{i}": "x" * 100 for i in range(5)})
    total = sum(len(v.split("...")[0]) for v in cleaned.values())
    assert total == 250
    assert cleaned["k4"] == "...[truncated 100 chars]"


def test_a_key_across_the_cut_is_not_left_half_visible():
    small = Redactor(max_chars=20)
    cleaned = small.clean("x" * 10 + "sk-abcdefghijklmnopqrstuvwxyz")
    assert "abcdef" not in cleaned
    assert cleaned.startswith("x" * 10 + "[REDACTED]")


def test_objects_become_data_or_text():
    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    class Weird:
        def __repr__(self):
            raise RuntimeError("no repr")

    from pydantic import BaseModel

    class Config(BaseModel):
        api_key: str
        region: str

    assert redact.clean(Login("ann", "pw")) == {"user": "ann", "password": REDACTED}
    assert redact.clean(Config(api_key="k", region="eu")) == {"api_key": REDACTED, "region": "eu"}
    assert redact.clean(Weird()) == "<Weird>"
    assert redact.clean({1, 2}) in ([1, 2], [2, 1])
    cycle: list = []
    cycle.append(cycle)
    assert "nested too deep" in str(redact.clean(cycle))
