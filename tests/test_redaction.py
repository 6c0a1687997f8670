"""Secrets never reach output: URLs, key=value pairs, bearer tokens, env dumps, webhooks."""

from __future__ import annotations

import pytest

from selfheal._redact import MASK, is_secret_key, redact, redact_url, redact_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # libpq's environment variable, as in a command line or an env dump.
        ("PGPASSWORD=hunter2 psql -h db", "PGPASSWORD=*** psql -h db"),
        ("env: REDISCLI_AUTH=hunter2", "env: REDISCLI_AUTH=***"),
        # An unencoded '@' in a password: redis-py and urllib split the authority at the
        # last '@', so the whole of "p@ss" is the password.
        ("redis://:p@ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("mysql://root:p@ss:w@rd@db/app failed", "mysql://root:***@db/app failed"),
        # Command lines in a failed command's output.
        ("mysqladmin --password hunter2 ping", "mysqladmin --password *** ping"),
        ("run --api-key hunter2 --verbose", "run --api-key *** --verbose"),
        # Plain text that only looks a little like it is kept.
        ("user@example.com wrote http://host:80/x", "user@example.com wrote http://host:80/x"),
        ("--password-file /run/secrets/db", "--password-file /run/secrets/db"),
    ],
)
def test_redact_more(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_glued_secret_names_are_secret_keys() -> None:
    assert is_secret_key("PGPASSWORD")
    assert is_secret_key("csrftoken")
    assert not is_secret_key("max_tokens")
    assert not is_secret_key("passthrough")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Slack, Discord and Teams webhooks carry their secret in the path, not the query.
        (
            "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/***",
        ),
        ("https://discord.com/api/webhooks/1234/tokentoken", "https://discord.com/api/***"),
        ("https://u:pw@pager.invalid/x?token=s3cret", "https://u:***@pager.invalid/x?token=***"),
        ("http://127.0.0.1:8080/restart", "http://127.0.0.1:8080/restart"),
    ],
)
def test_redact_url_hides_secret_paths(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cr3t@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("GET https://h/x?token=abc&x=1", "GET https://h/x?token=***&x=1"),
        ("host=db password=hunter2 user=a", "host=db password=*** user=a"),
        ('{"password": "x y", "user": "u"}', '{"password": "***", "user": "u"}'),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("api_key: AKIA123", "api_key: ***"),
        ("DB_PASSWORD=x", "DB_PASSWORD=***"),
        ("passport=1 bypass=2 author=joe", "passport=1 bypass=2 author=joe"),
        ("connect to 127.0.0.1:5432 refused", "connect to 127.0.0.1:5432 refused"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_value_walks_structures() -> None:
    assert redact_value({"password": "x", "n": [1, "token=5", None], "ok": True}) == {
        "password": MASK,
        "n": [1, "token=***", None],
        "ok": True,
    }
    assert is_secret_key("db_token")
    assert not is_secret_key("tokens_used_total_count_of_things_not_secret_x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A password named by a word, without '=' or ':' (a log line, a shell history).
        ("login with password hunter2 failed", "login with password *** failed"),
        ("the password is hunter2", "the password is ***"),
        ("DB_PASSWORD hunter2", "DB_PASSWORD ***"),
        ("passphrase correct-horse", "passphrase ***"),
        # What closes around a secret stays: only the secret is hidden.
        ("(password=hunter2)", "(password=***)"),
        ("connect(user=a, password=hunter2)", "connect(user=a, password=***)"),
        ("[token=abc]", "[token=***]"),
        ("retry (--password hunter2)", "retry (--password ***)"),
        # ...but a bracket that is part of the secret is hidden with it.
        ("password=hunt)er2", "password=***"),
        # The words of an error message about a password are not secrets.
        (
            'password authentication failed for user "app"',
            'password authentication failed for user "app"',
        ),
        ("password is required", "password is required"),
        ("--password-file /run/secrets/db", "--password-file /run/secrets/db"),
    ],
)
def test_redact_words_and_brackets(text: str, expected: str) -> None:
    assert redact(text) == expected
