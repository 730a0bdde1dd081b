"""Keep secrets out of logs, journals, reports and error messages.

Anything that looks like a Slack token, a GitHub token, a JWT (Kubernetes ServiceAccount tokens
are JWTs) or a PEM block is replaced by ``<redacted>`` before it is written or shown.
"""

from __future__ import annotations

import re

_SECRET = re.compile(
    "|".join(
        [
            r"xox[abposr]-[\w-]+",  # Slack bot/user/app tokens
            r"xapp-[\w-]+",  # Slack app-level tokens (Socket Mode)
            r"gh[pousr]_\w+",  # GitHub tokens
            r"eyJ[\w-]{10,}\.[\w-]+(?:\.[\w-]+)?",  # JWTs: Kubernetes ServiceAccount tokens
            r"-----BEGIN [A-Z ]+-----[^-]*(?:-----END [A-Z ]+-----)?",  # PEM keys and certificates
        ]
    )
)


def redact(text: str) -> str:
    """``text`` with every secret-looking part replaced by ``<redacted>``."""
    return _SECRET.sub("<redacted>", text)
