"""Keep secrets and terminal control sequences out of logs, journals, reports and error messages.

Two separate concerns, one door:

- ``redact(text)`` replaces secret-looking parts by ``<redacted>``: tokens recognisable by their
  shape (Slack, GitHub, JWTs such as Kubernetes ServiceAccount tokens, PEM blocks, AWS access key
  ids), the value of ``key=value`` / ``key: value`` pairs whose key names a secret (``password``,
  ``token``, ``api_key``, ``aws_secret_access_key``, Azure ``AccountKey``, GCP ``"private_key"``,
  ...), command-line options naming a secret (``--token=...``, ``--password ...``; not ``--token-file``),
  ``Authorization`` headers and ``Bearer`` tokens, URL passwords (``scheme://user:pass@host``)
  and long random-looking strings right after words such as token, secret or key.
- ``neutralise(text)`` makes control characters harmless for a terminal and for a Markdown report,
  and visible: ESC becomes ``␛`` (so ``\\x1b[31m`` shows as ``␛[31m`` and colours, cursor moves and
  OSC 8 hyperlinks do nothing), other C0 controls their Unicode control picture (``\\r`` is ``␍``,
  backspace ``␈``), C1 controls ``\\x9b`` and bidirectional overrides ``<U+202E>``.

``clean`` is both; ``clean_value`` cleans every string in a JSON-like value; ``redact_experiment``
takes inline secrets out of a Chaos Toolkit experiment before it is stored.

Every pattern is linear in the length of its input: tokens are anchored on a character that
cannot continue the previous token (a lookbehind), repetitions are bounded or cannot overlap with
what follows them, so a megabyte of hostile input costs milliseconds, not hours. This module
imports nothing beyond the standard library: it sits at the bottom layer and anyone may call it.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import re
from collections import Counter
from typing import Any

REDACTED = "<redacted>"

# Secrets recognisable by their shape alone; replaced whole. Each branch starts with a literal and
# checks the character before it right after (``x(?<![\w-]x)`` is ``(?<![\w-])x``): the regex
# engine then skips ahead to candidate first characters, about ten times faster on ordinary text.
_SHAPED = re.compile(
    "|".join(
        [
            r"x(?<![\w-]x)(?:ox[a-z](?:\.xox[a-z])?|app)-[\w-]++",  # Slack: xoxb-, xoxp-, xoxe.xoxp-, xapp-
            r"g(?<![\w-]g)(?:h[pousr]_[A-Za-z0-9_]{16,}+|ithub_pat_\w{20,}+)",  # GitHub tokens
            r"e(?<![\w-]e)yJ[\w-]{10,}+\.[\w-]++(?:\.[\w-]*+)?",  # JWTs: Kubernetes ServiceAccount tokens
            # PEM keys and certificates, also inside JSON strings where newlines are written \n.
            r"-----BEGIN [A-Z ]{1,40}+-----[^-]*+(?:-----END [A-Z ]{1,40}+-----)?",
            r"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS access key ids
        ]
    )
)

# scheme://user:password@host: the password goes, the rest stays readable.
_URL_PASSWORD = re.compile(r"(://[^\s:/@]{0,256}+:)([^\s/@]{1,256}+)(?=@)")

# Bearer tokens outside an Authorization header ("curl -H 'Bearer abc...'"): long, or with a digit,
# so that "the bearer reported" stays prose.
_BEARER = re.compile(r"(?i)(b(?<![\w-]b)earer\s++)((?=[\w.~+/-]*?\d)[\w.~+/-]{8,}+=*+|[\w.~+/-]{20,}+=*+)")

# A key followed by ':' or '=' (optionally quoted, as in JSON): whether it names a secret is decided
# in Python from its words, which is simpler and cheaper than a regex doing it.
# A command-line option is a key too (``--token=...``): a key may follow a dash that follows no word.
_PAIR_KEY = re.compile(r"(?<![\w.])(?<![\w.]-)([A-Za-z_][\w.-]{0,63}+)([\"']?\s{0,8}+[:=]\s{0,8}+)")
# A command-line option and its value as the next argument (``--token abc``, Go's ``-password abc``). Prose
# that names such an option ("--token takes a value") loses its next word: hiding a word beats leaking a secret.
_FLAG = re.compile(r"(?<![\w-])--?+([A-Za-z][\w-]{0,63}+)[ \t]++(?!-)")
#: Last words of an option that points at a secret rather than holding one (``--token-file PATH``).
_POINTERS = frozenset({"file", "path", "dir", "directory", "env", "stdin", "name", "id", "ref"})
_VALUE = re.compile(r"\"(?:[^\"\\\n]|\\.){0,10000}+\"|'[^'\n]{0,10000}+'|[^\s\"',;&<>{}\[\]()]++")
_VALUE_WITH_AMPERSANDS = re.compile(r"\"(?:[^\"\\\n]|\\.){0,10000}+\"|'[^'\n]{0,10000}+'|[^\s\"';<>]++")
_AUTH_VALUE = re.compile(r"(?i)[\"']?(?:(?:bearer|basic|token|digest|negotiate|ntlm)\s++)?([^\s\"',;]++)")
_KEY_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

#: Words (or runs of adjacent words, joined) that make a key name a secret: its value always goes.
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "secrets",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "accountkey",
        "sharedaccesskey",
        "sharedaccesssignature",
        "credential",
        "credentials",
        "sig",
        "authorization",
    }
)
#: Words (lower case) every key, Bearer or near-word secret contains: text without any has none.
_KEY_HINTS = re.compile("pass|pwd|secret|token|key|credential|sig|auth|bearer")
#: Keys whose value goes only when it looks random (``key: ab12...``), since "key" is also an ordinary word.
_WEAK_KEYS = frozenset({"key", "auth"})

# Long random-looking strings a few words after token/secret/key ("the key is 8fK2...").
_NEAR_WORD = re.compile(
    r"[tTsSkKpPcC](?<![\w-].)(?i:oken|ecret|ey|assw(?:or)?d|redential)s?\b"
    r"([^\w\n]{1,3}(?:[A-Za-z]{1,12}[ \t]{1,3}){0,3})"
    r"([A-Za-z0-9+/_.~-]{20,}+={0,2}+)(?![\w+/.~-])"
)

# neutralise: C0 controls but \t and \n, DEL, C1 controls, bidi embeddings/overrides/isolates and marks,
# line/paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Where redact cuts text apart: CSI sequences (7- and 8-bit) and single controls; \r stays inside a
# piece so a PEM block with CRLF line ends is still one block.
_SEQUENCE = re.compile(r"(\x1b\[[0-?]*+[ -/]*+[@-~]?|\x9b[0-?]*+[ -/]*+[@-~]?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f])")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control picture: ␛, ␍, ␈, ␇, ...
    if code == 0x7F:
        return "\u2421"  # ␡
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return f"<U+{code:04X}>"


def neutralise(text: str) -> str:
    """``text`` with every control character made visible and harmless; ``\\n`` and ``\\t`` stay.

    Replacing the introducer is enough to defuse a sequence: once ESC is ``␛``, ``[2J`` or
    ``]8;;https://...`` are plain text a reader can see, and a terminal does not act on them.
    """
    return _CONTROL.sub(_visible, text)


def _key_kind(key: str) -> str | None:
    """'strong' when the key names a secret, 'weak' when it only might (``key``), else None."""
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    weak = False
    for i in range(len(words)):
        for j in range(i + 1, min(i + 3, len(words)) + 1):
            joined = "".join(words[i:j])
            if joined in _SECRET_KEYS:
                return "strong"
            weak = weak or joined in _WEAK_KEYS
    return "weak" if weak else None


def _looks_random(token: str) -> bool:
    """Long, mixing letters and digits, and varied enough to be a key rather than a name or a date."""
    if len(token) < 20 or not any(c.isdigit() for c in token) or not any(c.isalpha() for c in token):
        return False
    counts = Counter(token)
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return entropy >= 3.5


def _redacted_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + REDACTED + value[0]
    return REDACTED


def _redact_pairs(text: str) -> str:
    parts: list[str] = []
    done = 0
    for match in _PAIR_KEY.finditer(text):
        if match.start() < done:
            continue  # inside a value already redacted
        key = match.group(1)
        kind = _key_kind(key)
        if kind is None:
            continue
        start = match.end()
        if kind == "strong" and "authorization" in key.lower():
            auth = _AUTH_VALUE.match(text, start)
            if auth is None or auth.group(1) == REDACTED:
                continue
            parts.extend([text[done : auth.start(1)], REDACTED])
            done = auth.end()
            continue
        pattern = _VALUE_WITH_AMPERSANDS if "signature" in key.lower() else _VALUE
        value = pattern.match(text, start)
        if value is None:
            continue
        shown = value.group()
        if kind == "weak" and not _looks_random(shown.strip("\"'")):
            continue
        if shown.strip("\"'") == REDACTED:
            continue
        parts.extend([text[done:start], _redacted_value(shown)])
        done = value.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _redact_flags(text: str) -> str:
    parts: list[str] = []
    done = 0
    for match in _FLAG.finditer(text):
        if match.start() < done:
            continue
        key = match.group(1)
        words = _KEY_WORDS.findall(key)
        if _key_kind(key) != "strong" or (words and words[-1].lower() in _POINTERS):
            continue
        value = _VALUE.match(text, match.end())
        if value is None or value.group().strip("\"'") == REDACTED:
            continue
        parts.extend([text[done : match.end()], _redacted_value(value.group())])
        done = value.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _near_word(match: re.Match[str]) -> str:
    if not _looks_random(match.group(2)):
        return match.group()
    return match.group()[: match.start(2) - match.start()] + REDACTED


def redact(text: str) -> str:
    """``text`` with every secret-looking part replaced by ``<redacted>`` (a pair's key is kept).

    Terminal sequences glued to a secret (``\x1b[31mpassword=...``) must not hide it: text with
    control characters is redacted piece by piece between them.
    """
    if _CONTROL.search(text) is None:
        return _redact(text)
    pieces = _SEQUENCE.split(text)
    pieces[::2] = [_redact(piece) for piece in pieces[::2]]
    return "".join(pieces)


def _redact(text: str) -> str:
    text = _SHAPED.sub(REDACTED, text)
    separated = "=" in text or ":" in text
    if separated:
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)
    # The remaining patterns all need a word that text mostly lacks: looked for at str.find speed.
    hints = _KEY_HINTS.findall(text.lower())
    if not hints:
        return text
    if separated:
        text = _redact_pairs(text)
    if "-" in text:
        text = _redact_flags(text)
    if "bearer" in hints:
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _NEAR_WORD.sub(_near_word, text)


def clean(text: str) -> str:
    """``text`` fit to be written anywhere: secrets redacted, control characters neutralised."""
    if len(text) <= _CACHED_LENGTH:
        return _clean_short(text)
    return neutralise(redact(text))


def clean_line(text: str) -> str:
    """``clean(text)`` kept on one line (newlines shown as ``␊``), for a line of terminal output or a cell.

    A note with a newline must not forge the next line of a log (``ok\n[+ 3.00s] resolved``).
    """
    return clean(text).replace("\n", "\u240a")


#: Journals repeat short strings (keys, names, actors, triggers): cleaning each once is enough.
_CACHED_LENGTH = 256


@functools.lru_cache(maxsize=8192)
def _clean_short(text: str) -> str:
    return neutralise(redact(text))


def clean_value(value: Any) -> Any:
    """``value`` with ``clean`` applied to every string in it, keys included; other scalars as they are.

    A dict entry is a key-value pair like ``password=...`` in text: a string under a key that names a
    secret (``{"password": "..."}``, ``{"db_token": "..."}``) is redacted whole, and under ``key`` or
    ``auth`` when it looks random. A key naming where a secret is (``tokenEnv``, ``secret_name``,
    ``password_file``) keeps its value: it is a reference, and definitions stay valid.
    Dicts, lists and tuples are rebuilt (the input is not changed); anything else is returned as is.
    """
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {
            clean_value(k): REDACTED if isinstance(v, str) and _secret_entry(k, v) else clean_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(clean_value(v) for v in value)
    return value


#: Last words of a key that names where a secret is, not the secret (``tokenEnv``, ``password_file``).
_REFERENCE_WORDS = frozenset({"env", "name", "names", "path", "file", "ref", "id", "type", "kind", "url"})


def _secret_entry(key: object, value: str) -> bool:
    if not isinstance(key, str) or not value or value == REDACTED:
        return False
    kind = _key_kind(key)
    if kind is None:
        return False
    words = _KEY_WORDS.findall(key)
    if words and words[-1].lower() in _REFERENCE_WORDS:
        return False
    return kind == "strong" or _looks_random(value)


#: Secret references Chaos Toolkit resolves at run time; they name where the secret is, never hold it.
_REFERENCE_TYPES = frozenset({"env", "vault"})


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in _REFERENCE_TYPES


def _redact_secret_scope(scope: Any) -> Any:
    if not isinstance(scope, dict):
        return REDACTED
    return {clean(str(name)): clean_value(value) if _is_reference(value) else REDACTED for name, value in scope.items()}


def _redact_configuration(configuration: Any) -> Any:
    if not isinstance(configuration, dict):
        return clean_value(configuration)
    out: dict[Any, Any] = {}
    for name, value in configuration.items():
        secretish = _key_kind(str(name)) is not None or "key" in str(name).lower()
        if isinstance(value, str) and secretish:
            out[clean(str(name))] = REDACTED
        else:
            out[clean_value(name)] = clean_value(value)
    return out


def redact_experiment(experiment: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Chaos Toolkit experiment fit for the journal: no inline secret left in it.

    Why: the journal stores the experiment so that ``drill restore`` in a fresh process (after a
    crash) can run its rollbacks without the original file. References stay as they are, because
    they hold no secret and still resolve in that process: ``{"type": "env", "key": "NAME"}`` and
    ``{"type": "vault", ...}`` under ``secrets`` are kept. Inline secret values do not belong in a
    journal that is exported, archived and read by people: each becomes ``<redacted>`` (a rollback
    that needed one fails visibly rather than leaking it). ``configuration`` is kept, cleaned, and
    its inline strings whose key looks secret (password, token, secret, key, credential) are
    redacted too; env references there are dicts and survive. Everything else is cleaned.
    """
    copied = copy.deepcopy(experiment)
    out: dict[str, Any] = {}
    for name, value in copied.items():
        if name == "secrets":
            out[name] = (
                {clean(str(s)): _redact_secret_scope(v) for s, v in value.items()}
                if isinstance(value, dict)
                else REDACTED
            )
        elif name == "configuration":
            out[name] = _redact_configuration(value)
        else:
            out[clean_value(name)] = clean_value(value)
    return out


class CleaningFilter(logging.Filter):
    """Cleans every log record (message, arguments, traceback) before a handler writes it.

    Attach it to the handler (``handler.addFilter(redaction.CleaningFilter())``), not to a logger: a
    logger's filters do not see records propagated from its children (chaoslib logs from many).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return True
