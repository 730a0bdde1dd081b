"""Secrets and terminal control sequences never reach logs, journals, reports or error messages."""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestrator import redaction

PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# (name, text with a secret, the secret that must be gone, the text expected after redaction)
SECRETS = [
    ("slack bot", "token was xoxb-fake-token-for-tests in the message", "xoxb-fake-token-for-tests", None),
    ("slack app", "token was xapp-fake-app-token-for-tests in the message", "xapp-fake-app-token-for-tests", None),
    ("slack user", "pasted xoxp-1234-5678-abcdef by mistake", "xoxp-1234-5678-abcdef", None),
    ("slack refresh", "pasted xoxe.xoxp-1-abcdef by mistake", "xoxe.xoxp-1-abcdef", None),
    ("github", "token was ghp_faketokenfortests00 in the message", "ghp_faketokenfortests00", None),
    ("github pat", "use github_pat_11ABCDEFG0123456789abcdef now", "github_pat_11ABCDEFG0123456789abcdef", None),
    (
        "jwt",
        "sa token eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl here",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl",
        "sa token <redacted> here",
    ),
    (
        "pem",
        f"key: -----BEGIN PRIVATE KEY-----{PEM_BODY}-----END PRIVATE KEY----- oops",
        PEM_BODY,
        "key: <redacted> oops",
    ),
    (
        "pem with newlines",
        f"oops\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\nsorry",
        PEM_BODY,
        "oops\n<redacted>\nsorry",
    ),
    ("password=", "tried password=hunter2 on the db", "hunter2", "tried password=<redacted> on the db"),
    ("passwd:", "root passwd: hunter2 works", "hunter2", "root passwd: <redacted> works"),
    ("pwd=", "login with pwd=hunter2", "hunter2", "login with pwd=<redacted>"),
    ("secret=", "set secret=s3cr3tvalue then retry", "s3cr3tvalue", "set secret=<redacted> then retry"),
    ("token=", "curl ...?token=abc123def&page=2", "abc123def", "curl ...?token=<redacted>&page=2"),
    ("api_key=", "api_key=zzz-live-1 in env", "zzz-live-1", "api_key=<redacted> in env"),
    ("apikey:", "apikey: zzz-live-1", "zzz-live-1", "apikey: <redacted>"),
    ("x-api-key header", "X-Api-Key: zzz-live-1", "zzz-live-1", "X-Api-Key: <redacted>"),
    ("DB_PASSWORD", "export DB_PASSWORD='hunter 2'", "hunter 2", "export DB_PASSWORD='<redacted>'"),
    ("json password", 'body {"password": "hunter2", "user": "bob"}', "hunter2", None),
    ("dotted key", "spring.datasource.password=hunter2", "hunter2", "spring.datasource.password=<redacted>"),
    ("authorization bearer", "sent Authorization: Bearer abc.def-ghi", "abc.def-ghi", None),
    ("authorization basic", "sent Authorization: Basic dXNlcjpwYXNz ok", "dXNlcjpwYXNz", None),
    ("json authorization", '{"Authorization": "Bearer abc.def-ghi"}', "abc.def-ghi", None),
    ("bearer alone", "curl -H 'Bearer 0a1b2c3d4e5f' failed", "0a1b2c3d4e5f", "curl -H 'Bearer <redacted>' failed"),
    ("aws access key id", "creds AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE", None),
    ("aws session key id", "creds ASIAIOSFODNN7EXAMPLE leaked", "ASIAIOSFODNN7EXAMPLE", None),
    ("aws secret", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws_secret_access_key = <redacted>"),
    ("aws secret env", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, None),
    ("aws secret json", f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET, None),
    (
        "azure account key",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zm9vYmFy+/abc==;EndpointSuffix=core.windows.net",
        "Zm9vYmFy+/abc==",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=<redacted>;EndpointSuffix=core.windows.net",
    ),
    (
        "azure sas",
        "SharedAccessSignature=sv=2021-06-08&ss=b&sig=AbC%2Bdef123;BlobEndpoint=x",
        "AbC%2Bdef123",
        "SharedAccessSignature=<redacted>;BlobEndpoint=x",
    ),
    ("azure sas url", "https://acme.blob.core.windows.net/c?sv=2021&sig=AbC%2Bdef123", "AbC%2Bdef123", None),
    (
        "gcp private key",
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEv\\n-----END PRIVATE'
        ' KEY-----\\n", "client_email": "x@y.iam.gserviceaccount.com"}',
        "MIIEv",
        None,
    ),
    (
        "gcp private key no pem",
        '"private_key": "MIIEvQIBADANBgkqhkiG9w0"',
        "MIIEvQIBADANBgkqhkiG9w0",
        '"private_key": "<redacted>"',
    ),
    (
        "url credentials",
        "db at postgres://app:hunter2@db.internal:5432/x is slow",
        "hunter2",
        "db at postgres://app:<redacted>@db.internal:5432/x is slow",
    ),
    (
        "random after key",
        "the api key for prod is 8fK2mQ9xLp3vT7wZ1bN4cR6y",
        "8fK2mQ9xLp3vT7wZ1bN4cR6y",
        "the api key for prod is <redacted>",
    ),
    ("random after token", "token 8fK2mQ9xLp3vT7wZ1bN4cR6y", "8fK2mQ9xLp3vT7wZ1bN4cR6y", "token <redacted>"),
    ("random key=", "key=8fK2mQ9xLp3vT7wZ1bN4cR6y", "8fK2mQ9xLp3vT7wZ1bN4cR6y", "key=<redacted>"),
    ("cli --token=", "kubectl --token=abc123def get pods", "abc123def", "kubectl --token=<redacted> get pods"),
    ("cli --token value", "kubectl --token abc123def get pods", "abc123def", "kubectl --token <redacted> get pods"),
    ("cli --password quoted", "mysql --password 'hunter 2' -h db", "hunter 2", "mysql --password '<redacted>' -h db"),
    ("go flag", "app -slack-token=abc123def -v", "abc123def", "app -slack-token=<redacted> -v"),
    ("go flag value", "app -client-secret abc123def -v", "abc123def", "app -client-secret <redacted> -v"),
]


@pytest.mark.parametrize(("text", "secret", "expected"), [s[1:] for s in SECRETS], ids=[s[0] for s in SECRETS])
def test_secrets_are_redacted_in_context(text: str, secret: str, expected: str | None) -> None:
    out = redaction.redact(text)
    assert secret not in out
    assert redaction.REDACTED in out
    if expected is not None:
        assert out == expected


ORDINARY = [
    "the service is down, auto-restart is off",
    "the service is down; auto-restart is off (see drill.dev/suspension, eyes on xox)",
    "restarted it at 10:32, looks good: latency back to 120ms",
    "run sandbox-no-automation-20250101-103000-ab12 resolved at 2025-01-01T10:35:00Z",
    "pod payments-api-7d9f8b6c5-x2x9z in namespace payments is CrashLoopBackOff",
    "the bearer of bad news reported it",
    "key takeaway: nobody noticed the alert for 5 minutes",
    "sort key: created_at; token bucket size=100",
    "see https://example.com/runbooks/sandbox#restart and http://127.0.0.1:18080/healthz",
    "ssh deploy@bastion then sudo systemctl status sandbox",
    "author=bob, bypass=false, design=v2, passenger count: 3",
    "sha 3f2c1a9 merged; 42 errors; p99 1.2s",
    "tokens: 3 of 5 used",
    "policy supervisor-auto-restart: restored (verified)",
    "drill run --token-file /etc/drill/token --context prod",
    "kubectl get secrets --namespace payments --output json",
    "docker login --password-stdin < pass.txt",
    "restart with --verbose --force, then --dry-run",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redaction.redact(text) == text
    assert redaction.clean(text) == text


ESCAPES = [
    ("csi colour", "\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),
    ("clear screen", "\x1b[2J\x1b[H", "␛[2J␛[H"),
    ("osc title", "\x1b]0;pwned\x07", "␛]0;pwned␇"),
    ("osc 8 hyperlink", "\x1b]8;;https://evil\x1b\\click\x1b]8;;\x1b\\", "␛]8;;https://evil␛\\click␛]8;;␛\\"),
    ("single-char escape", "\x1bcreset", "␛creset"),
    ("bell", "ding\x07", "ding␇"),
    ("backspace", "ok\x08\x08no", "ok␈␈no"),
    ("carriage return", "all good\rFAILED", "all good␍FAILED"),
    ("nul", "a\x00b", "a␀b"),
    ("del", "a\x7fb", "a␡b"),
    ("c1 csi", "\x9b31mred", "\\x9b31mred"),
    ("c1 osc", "\x9d0;t\x9c", "\\x9d0;t\\x9c"),
    ("bidi override", "user\u202etxt.exe", "user<U+202E>txt.exe"),
    ("bidi isolate", "a\u2066b\u2069", "a<U+2066>b<U+2069>"),
    ("line separator", "a\u2028b", "a<U+2028>b"),
]


@pytest.mark.parametrize(("text", "expected"), [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES])
def test_control_characters_are_made_visible(text: str, expected: str) -> None:
    out = redaction.neutralise(text)
    assert out == expected
    assert not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in out)


def test_newlines_tabs_and_unicode_text_stay() -> None:
    text = "line one\n\tline two: café, 東京, emoji 🔥"
    assert redaction.neutralise(text) == text


def test_clean_is_redact_then_neutralise_and_idempotent() -> None:
    text = "\x1b[31mpassword=hunter2\x1b[0m and xoxb-fake-token-for-tests\u202e"
    out = redaction.clean(text)
    assert "hunter2" not in out and "xoxb" not in out and "\x1b" not in out and "\u202e" not in out
    assert redaction.clean(out) == out
    for _, secret_text, _, _ in SECRETS:
        once = redaction.clean(secret_text)
        assert redaction.clean(once) == once


def test_clean_value_cleans_nested_strings_and_keys() -> None:
    value = {
        "text": "password=hunter2",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "xoxb-key-as-a-key": ["\x1b[2J", ("ghp_faketokenfortests00", 7)],
        "nested": {"deep": [{"note": "Bearer 0a1b2c3d4e5f"}]},
    }
    out = redaction.clean_value(value)
    assert out == {
        "text": "password=<redacted>",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "<redacted>": ["␛[2J", ("<redacted>", 7)],
        "nested": {"deep": [{"note": "Bearer <redacted>"}]},
    }
    assert value["text"] == "password=hunter2"  # the input is not changed


EXPERIMENT = {
    "title": "kill it \x1b[31m",
    "secrets": {
        "db": {
            "password": "PLANTED-inline-password",
            "from_env": {"type": "env", "key": "DB_PASSWORD"},
            "from_vault": {"type": "vault", "path": "secret/data/db", "key": "password"},
        },
        "slack": {"token": "xoxb-PLANTED-inline"},
    },
    "configuration": {
        "sandbox_home": {"type": "env", "key": "DRILL_SANDBOX_HOME", "default": "~/.local/state/drill/sandbox"},
        "sandbox_url": "http://127.0.0.1:18080",
        "api_token": "PLANTED-config-token",
        "access_key": "PLANTED-config-key",
        "connection": "Server=x;Password=PLANTED-in-connection;",
        "retries": 3,
    },
    "method": [
        {"type": "action", "name": "a", "provider": {"type": "python", "arguments": {"home": "${sandbox_home}"}}}
    ],
}


def test_redact_experiment_keeps_references_and_removes_inline_secrets() -> None:
    out = redaction.redact_experiment(EXPERIMENT)
    assert "PLANTED" not in json.dumps(out)
    assert out["secrets"]["db"]["from_env"] == {"type": "env", "key": "DB_PASSWORD"}
    assert out["secrets"]["db"]["from_vault"] == {"type": "vault", "path": "secret/data/db", "key": "password"}
    assert out["secrets"]["db"]["password"] == "<redacted>"
    assert out["secrets"]["slack"]["token"] == "<redacted>"
    configuration = out["configuration"]
    assert configuration["sandbox_home"] == EXPERIMENT["configuration"]["sandbox_home"]  # type: ignore[index]
    assert configuration["sandbox_url"] == "http://127.0.0.1:18080"
    assert configuration["retries"] == 3
    assert configuration["api_token"] == configuration["access_key"] == "<redacted>"
    assert configuration["connection"] == "Server=x;Password=<redacted>;"
    assert out["method"] == EXPERIMENT["method"]
    assert out["title"] == "kill it ␛[31m"
    assert EXPERIMENT["secrets"]["db"]["password"] == "PLANTED-inline-password"  # type: ignore[index]


PATHOLOGICAL = {
    "word chars": "a" * 1_000_000,
    "jwt starts": "eyJ" * 333_334,
    "jwt no dot": "eyJ" + "a" * 1_000_000,
    "slack prefixes": "xoxb-" * 200_000,
    "github prefixes": "ghp_" * 250_000,
    "pem begins": "-----BEGIN " * 90_000,
    "pem unterminated": "-----BEGIN " + "A " * 500_000,
    "aws ids": "AKIA" * 250_000,
    "url schemes": "a://" * 250_000,
    "url user no at": "https://" + "u" * 200 + ":" + "p" * 1_000_000,
    "pairs": "password=" * 111_112,
    "keys no separator": ("k" * 70 + " ") * 14_000,
    "json quotes": '"password": "' + "x" * 1_000_000,
    "bearer words": "bearer " * 142_858,
    "bearer long": "Bearer " + "a" * 1_000_000,
    "near words": "token is a " * 90_910,
    "near long": "secret " + "aB3" * 333_334,
    "authorization": "Authorization: " * 66_667,
    "controls": "\x1b[" * 500_000,
    "mixed": "password=x; token: eyJ.a \x1b]8;; AKIA https://u:p@h " * 20_000,
    "flags": "--token " * 125_000,
    "flag values": "-password x" * 90_910,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_a_megabyte_of_hostile_input_is_cleaned_quickly(text: str) -> None:
    started = time.perf_counter()
    redaction.clean(text)
    assert time.perf_counter() - started < 5.0  # linear patterns take well under a second; loose on a busy machine


def test_ten_thousand_events_worth_of_text_is_quick() -> None:
    events = [
        {
            "name": "note",
            "actor": "alice",
            "trigger": "drill note",
            "expected": "steady state holds",
            "actual": f"restarted pod payments-api-7d9f8b6c5-x2x9z at 10:{i % 60:02d}",
            "data": {"text": f"event {i}: the service is down, auto-restart is off", "seq": i},
        }
        for i in range(10_000)
    ]
    started = time.perf_counter()
    redaction.clean_value(events)
    assert time.perf_counter() - started < 2.0  # about a fifth of a second here; loose on a busy machine


def test_clean_line_keeps_a_note_on_one_line() -> None:
    assert redaction.clean_line("ok\n[+ 3.00s] resolved password=x") == "ok␊[+ 3.00s] resolved password=<redacted>"


def test_clean_value_redacts_strings_under_secret_keys_and_keeps_references() -> None:
    value = {
        "labels": {"password": "hunter2", "team": "payments"},
        "configuration": {"db_token": "opaque", "apiKey": "x", "retries": 3, "token_count": 5},
        "slack": {"tokenEnv": "SLACK_BOT_TOKEN", "secret_name": "db-creds", "password_file": "/run/secrets/db"},
        "ref": {"type": "env", "key": "DB_PASSWORD"},
        "random": {"key": "8fK2mQ9xLp3vT7wZ1bN4cR6y", "auth": "basic"},
    }
    assert redaction.clean_value(value) == {
        "labels": {"password": "<redacted>", "team": "payments"},
        "configuration": {"db_token": "<redacted>", "apiKey": "<redacted>", "retries": 3, "token_count": 5},
        "slack": {"tokenEnv": "SLACK_BOT_TOKEN", "secret_name": "db-creds", "password_file": "/run/secrets/db"},
        "ref": {"type": "env", "key": "DB_PASSWORD"},
        "random": {"key": "<redacted>", "auth": "basic"},
    }


def test_cleaning_filter_cleans_log_records_before_they_are_written() -> None:
    import io
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redaction.CleaningFilter())
    log = logging.getLogger("tests.redaction.child")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("running %s with %s", "true", "password=hunter2 \x1b[2J")
        try:
            raise ValueError("token=abc123 failed")
        except ValueError:
            log.exception("probe failed for %s", "xoxb-fake-token-for-tests")
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "running true with password=<redacted> ␛[2J" in written
    assert "hunter2" not in written and "abc123" not in written and "xoxb-fake" not in written
    assert "\x1b" not in written and "ValueError: token=<redacted> failed" in written


def test_markdown_report_escapes_what_people_typed() -> None:
    from orchestrator.reporting import reports

    typed = "a | b\n# heading <img src=x onerror=alert(1)> &#8238; [link](http://evil) \x1b[31m `tick`"
    report = {
        "drill": "d",
        "run_id": "r`|x",
        "mode": "no-automation",
        "outcome": "aborted",
        "state": "done",
        "abort_reason": typed,
        "target": "sandbox",
        "started_at": "2025-01-01T10:00:00Z",
        "ended_at": "2025-01-01T10:05:00Z",
        "hints_used": 0,
        "description": "- " + typed,
        "timings": [],
        "responders": [],
        "policies": [
            {
                "name": "p",
                "kind": "k",
                "prior": "a`b|c",
                "suspended_at": None,
                "restored_at": None,
                "restore_verified": False,
                "detail": typed,
            }
        ],
        "participants": [{"name": "alice", "role": "responder"}],
        "timeline": [{"at": "2025-01-01T10:01:00Z", "event": "note", "actor": "bob", "detail": typed}],
        "notes": [{"at": "2025-01-01T10:01:00Z", "actor": "bob", "text": typed}],
    }
    # Read as a report is (attributes); the prior stays a hostile string no model would let through.
    rows = {k: [SimpleNamespace(**row) for row in v] for k, v in report.items() if isinstance(v, list)}
    markdown = reports.render_markdown(cast(Any, SimpleNamespace(**{**report, **rows})))
    assert "\x1b" not in markdown
    # No HTML tag, entity or link is left unescaped (the <br> are the report's own line breaks).
    assert not re.search(r"(?<!\\)(<(?!br>)|&|\]\()", markdown), markdown
    for line in markdown.splitlines():
        if line.startswith("| 2025") or line.startswith("| p |"):
            cells = line.replace("\\|", "").count("|")
            assert cells == (5 if line.startswith("| 2025") else 7), line
    assert "a \\| b<br># heading \\<img" in markdown
    assert "\n\\- a \\| b" not in markdown and "\n\\- a | b<br>" in markdown  # the description cannot be a list
    assert "`r'\\|x`" in markdown and '`"a\'b\\|c"`' in markdown
    assert "\n# heading" not in markdown
