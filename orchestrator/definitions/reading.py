"""Read and parse definition files within bounds: one reader for drills, experiments and any future catalog.

``read_text`` opens without blocking, refuses anything that is not a regular file (a FIFO, a device such as
``/dev/zero``, a directory, a socket) and never reads more than a limit. ``parse_yaml`` composes the YAML
node by node, counting nesting depth, alias uses and the number of values as they would be once aliases
are expanded, so hostile YAML (billion laughs, 10,000 levels of brackets, recursive anchors) stops early
with an ``InputRefused`` instead of a ``RecursionError`` or gigabytes of memory. ``parse_json`` does the
same for JSON after decoding it (the decoder is C and bounded by the file size).

Nothing here knows what a drill is: callers turn ``InputRefused`` into errors naming their file and field.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import yaml.composer
import yaml.constructor
import yaml.nodes
import yaml.parser
import yaml.reader
import yaml.resolver
import yaml.scanner

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CHUNK = 64 * 1024


class InputRefused(Exception):  # noqa: N818 (a refusal, reported to the user as a definition error)
    """The input is refused: ``message`` says why and how to fix it; ``line`` (1-based) where, if known."""

    def __init__(self, message: str, *, line: int | None = None, kind: str = "file") -> None:
        self.message = message
        self.line = line
        #: ``file`` (could not be read as a bounded regular file), ``yaml`` or ``json`` (its structure).
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """What one parse may cost: nesting depth, values once aliases are expanded, and alias uses."""

    max_depth: int
    max_nodes: int
    max_aliases: int


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _size(size: int) -> str:
    return f"{size:,} bytes" if size < 1024 * 1024 else f"{size / (1024 * 1024):.1f} MiB ({size:,} bytes)"


def read_text(path: Path, *, max_bytes: int) -> str:
    """The file's text (UTF-8), read without blocking and never beyond ``max_bytes``.

    Symlinks are followed (a drill may link to a shared experiment) but the file they lead to must be a
    regular file: that is checked before opening (a device is never opened) and again on the open file.
    """
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise InputRefused("no such file; check the path") from None
    except (OSError, ValueError) as exc:
        raise InputRefused(f"cannot read it: {_os_reason(exc)}") from None
    if not stat.S_ISREG(before.st_mode):
        raise InputRefused(f"is {_kind(before.st_mode)}, not a regular file; give the path of a file")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputRefused(f"cannot read it: {_os_reason(exc)}") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped between the stat and the open
            raise InputRefused(f"is {_kind(opened.st_mode)}, not a regular file; give the path of a file")
        if opened.st_size > max_bytes:
            raise InputRefused(_too_big(opened.st_size, max_bytes))
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:  # the size may lie (a growing file, /proc): stop one byte past the limit
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise InputRefused(_too_big(total, max_bytes, at_least=True))
    except OSError as exc:
        raise InputRefused(f"cannot read it: {_os_reason(exc)}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputRefused(f"is not UTF-8 text (byte {exc.start:,}); save it as UTF-8", line=line) from None


def _os_reason(exc: OSError | ValueError) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _too_big(size: int, limit: int, *, at_least: bool = False) -> str:
    size_text = f"more than {_size(limit)}" if at_least else _size(size)
    return f"is {size_text}, over the limit of {_size(limit)}; a definition this large is not a drill, check the path"


# --------------------------------------------------------------------------------------------------------------------
class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting as it goes so that no input can make it recurse or expand without bound."""

    bounds: Bounds

    def _start_bounds(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self._depth = 0
        self._nodes = 0
        self._aliases = 0
        # id(node) -> values it stands for once expanded; a node is entered here when it is complete, so an
        # alias to a node still being composed (a recursive anchor) finds nothing.
        self._sizes: dict[int, int] = {}

    def _count(self, values: int, mark: Any) -> None:
        self._nodes += values
        if self._nodes > self.bounds.max_nodes:
            fix = (
                "once its aliases are expanded; write the values out or reuse fewer, smaller anchors"
                if self._aliases
                else "(each mapping, list and scalar counts one); this is too large for a definition"
            )
            raise InputRefused(f"holds more than {self.bounds.max_nodes:,} values {fix}", line=_line(mark), kind="yaml")

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # the parser half of the loader
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)  # raises on an undefined alias
            size = self._sizes.get(id(node))
            if size is None:
                raise InputRefused(
                    f"the alias *{event.anchor} is used inside the anchor &{event.anchor} it refers to; "
                    "a value cannot contain itself",
                    line=_line(event.start_mark),
                    kind="yaml",
                )
            self._aliases += 1
            if self._aliases > self.bounds.max_aliases:
                raise InputRefused(
                    f"uses more than {self.bounds.max_aliases} aliases (*name); write the values out",
                    line=_line(event.start_mark),
                    kind="yaml",
                )
            self._count(size, event.start_mark)
            return node
        self._depth += 1
        if self._depth > self.bounds.max_depth:
            raise InputRefused(
                f"is nested deeper than {self.bounds.max_depth} levels; flatten it",
                line=_line(event.start_mark),
                kind="yaml",
            )
        before = self._nodes
        self._count(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._nodes - before
        self._depth -= 1
        return node


class _Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor that refuses duplicate keys and turns bad scalars into YAML errors with a line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:  # a date such as 2026-02-30, a 5,000-digit int
            text = node.value if isinstance(node.value, str) else ""
            shown = text if len(text) <= 40 else f"{text[:20]}...({len(text):,} characters)"
            what = {"int": "number", "float": "number", "timestamp": "date"}.get(node.tag.rsplit(":", 1)[-1], "value")
            reason = "it has more than 4,300 digits" if "digits" in str(exc) else str(exc)
            raise InputRefused(
                f"{shown!r} is not a valid {what}: {reason}; correct it, or quote it to keep it as text",
                line=_line(node.start_mark),
                kind="yaml",
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *defaults``: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the last one would silently win)", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _PureLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    _Constructor,
    yaml.resolver.Resolver,
):
    def __init__(self, text: str, bounds: Bounds) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._start_bounds(bounds)


def _loader_class() -> Any:
    """libyaml's event parser (C, about 3x faster) under our composer when PyYAML was built with it."""
    if not getattr(yaml, "__with_libyaml__", False):
        return _PureLoader
    from yaml import _yaml

    class _FastLoader(_BoundedComposer, _yaml.CParser, _Constructor, yaml.resolver.Resolver):
        def __init__(self, text: str, bounds: Bounds) -> None:
            _yaml.CParser.__init__(self, text)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._start_bounds(bounds)

    return _FastLoader


_LOADER = _loader_class()


def _line(mark: Any) -> int | None:
    line = getattr(mark, "line", None)
    return line + 1 if isinstance(line, int) else None


def parse_yaml(text: str, bounds: Bounds) -> tuple[yaml.Node | None, Any]:
    """One YAML document: its node tree (for line numbers) and the data built from that same tree.

    Raises ``yaml.YAMLError`` for invalid YAML and ``InputRefused`` past the bounds.
    """
    loader = _LOADER(text, bounds)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    except RecursionError:  # not expected within the bounds (merge keys recurse); never a traceback
        raise InputRefused(f"is nested deeper than {bounds.max_depth} levels; flatten it", kind="yaml") from None
    except yaml.MarkedYAMLError as exc:
        # libyaml stops at 1,000 levels on its own, often before the composer sees level 65 (it reads ahead)
        if "maximum nesting depth" in str(exc.problem):
            line = _line(exc.problem_mark)
            raise InputRefused(
                f"is nested deeper than {bounds.max_depth} levels; flatten it", line=line, kind="yaml"
            ) from None
        raise
    finally:
        with contextlib.suppress(Exception):
            loader.dispose()


def parse_json(text: str, bounds: Bounds) -> Any:
    """One JSON document, within the same depth and size bounds as YAML (JSON has no aliases)."""
    data = decode_json(text, bounds)
    check_structure(data, bounds)
    return data


def decode_json(text: str, bounds: Bounds) -> Any:
    """Decode JSON, bounded only by the text's size: a caller that first wants to look at the top level (to
    report what is too large in its own words) calls ``check_structure`` after that, as ``parse_json`` does.
    """
    try:
        return json.loads(text)
    except RecursionError:  # the C decoder stops at Python's recursion limit, long before memory matters
        raise InputRefused(f"is nested deeper than {bounds.max_depth} levels; flatten it", kind="json") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        line = getattr(exc, "lineno", None)
        reason = getattr(exc, "msg", None) or str(exc)
        raise InputRefused(f"is not valid JSON: {reason}", line=line, kind="json") from None


def check_structure(data: Any, bounds: Bounds) -> None:
    """Refuse decoded data deeper or larger than ``bounds``, walking it without recursion."""
    count = 1
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > bounds.max_depth:
            raise InputRefused(f"is nested deeper than {bounds.max_depth} levels; flatten it", kind="json")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        count += len(children)  # counted before they are stacked, so the walk itself stays small
        if count > bounds.max_nodes:
            raise InputRefused(f"holds more than {bounds.max_nodes:,} values; make it smaller", kind="json")
        stack.extend((item, depth + 1) for item in children)
