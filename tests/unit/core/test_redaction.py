"""Secrets never reach logs, journals, reports or error messages."""

from __future__ import annotations

import pytest

from orchestrator import redaction

SECRETS = [
    "xoxb-fake-token-for-tests",
    "xapp-fake-app-token-for-tests",
    "ghp_faketokenfortests",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl",
    "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-----END PRIVATE KEY-----",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_redacted_in_context(secret: str) -> None:
    text = f"token was {secret} in the message"
    out = redaction.redact(text)
    assert secret not in out
    assert out == "token was <redacted> in the message"


def test_ordinary_text_is_untouched() -> None:
    text = "the service is down; auto-restart is off (see drill.dev/suspension, eyes on xox)"
    assert redaction.redact(text) == text
