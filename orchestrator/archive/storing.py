"""The archive's files: every finished run stored once, immutably, with a checksum of each file.

Layout::

    <archive>/<run-id>/report.json     the canonical RunReport (reporting.model)
    <archive>/<run-id>/report.md       the same report for people
    <archive>/<run-id>/journal.jsonl   every journal event of the run
    <archive>/<run-id>/manifest.json   sha256 and size of each file above; written last

A run is *archived* when its folder holds a ``manifest.json``. The folder is assembled in a hidden
staging folder next to it (``.staging-<run-id>-*``), every file and the folder fsynced, then renamed
into place in one step: a process killed at any moment (SIGKILL included) leaves the whole run or
nothing. A folder without a manifest (a report ``finish_run`` wrote before archiving existed, or one
whose archiving was cut short) is not archived; archiving the run replaces it, through a hidden
``.replaced-*`` folder, so a kill between the two renames leaves nothing under the run's name and the
journal still holds the run. Hidden folders are never read as runs; ``sweep`` removes them.

An archived run is never rewritten: ``archive_run`` on it returns the folder as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import errors
from orchestrator.clock import iso
from orchestrator.journal import base as journal_base
from orchestrator.reporting import model, reports

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
FILES = ("journal.jsonl", "report.json", "report.md")
_STAGING = ".staging-"
_REPLACED = ".replaced-"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    run_id: str
    archived_at: str | None
    files: dict[str, FileEntry]
    sha256: str
    """Of the manifest file itself: the index records it, so a changed manifest is seen too."""


@dataclass
class Verified:
    """What ``verify`` found: runs whose every checksum matched, and every problem, one line each."""

    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unarchived: list[str] = field(default_factory=list)
    """Folders with no manifest: reports written before archiving, or archiving cut short."""


def check_run_id(run_id: str) -> str:
    """A run id is a folder name: refuse anything that could point elsewhere (``..``, ``/``, hidden)."""
    if not _RUN_ID.match(run_id) or ".." in run_id:
        raise errors.ReportError(f"{run_id!r} is not a run id that can be archived (letters, digits, . _ -)")
    return run_id


def digest(path: Path) -> FileEntry:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return FileEntry(sha256=hasher.hexdigest(), bytes=size)


def _fsync_path(path: Path) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def manifest_text(run_id: str, entries: dict[str, FileEntry], *, archived_at: float | None) -> str:
    document = {
        "manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "archived_at": iso(archived_at),
        "files": {name: {"sha256": e.sha256, "bytes": e.bytes} for name, e in sorted(entries.items())},
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


@contextlib.contextmanager
def staging(archive_root: Path, run_id: str) -> Iterator[Path]:
    """A hidden folder next to the run's final place, removed if the block fails."""
    check_run_id(run_id)
    archive_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{run_id}-", dir=archive_root))
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def publish(staged: Path, archive_root: Path, run_id: str, *, archived_at: float | None, durable: bool = True) -> Path:
    """Write the manifest of ``staged`` (last), make it durable, and rename it to ``archive_root/run_id``.

    ``durable=False`` skips the fsyncs: for generated archives (tests, benchmarks), never for real runs.
    """
    names = sorted(p.name for p in staged.iterdir())
    missing = [name for name in FILES if name not in names]
    if missing:
        raise errors.ReportError(f"cannot archive {run_id}: {', '.join(missing)} not written")
    entries = {name: digest(staged / name) for name in names if name != MANIFEST}
    manifest = staged / MANIFEST
    manifest.write_text(manifest_text(run_id, entries, archived_at=archived_at), encoding="utf-8")
    if durable:
        for name in [*entries, MANIFEST]:
            _fsync_path(staged / name)
        _fsync_path(staged)
    final = archive_root / run_id
    replaced: Path | None = None
    if final.exists():
        replaced = Path(tempfile.mkdtemp(prefix=f"{_REPLACED}{run_id}-", dir=archive_root))
        os.replace(final, replaced / run_id)
    os.rename(staged, final)
    if durable:
        _fsync_path(archive_root)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    return final


def is_archived(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def archive_run(
    journal: journal_base.JournalStore,
    run_id: str,
    archive_root: Path,
    *,
    now: float,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Store one finished run (report.json, report.md, journal.jsonl, manifest.json); returns its folder.

    Built from the journal alone, like the report, plus ``extra_files`` (name -> text) the run
    produced beside it: the Chaos Toolkit ``journal.json``. An already archived run is returned untouched.
    """
    final = archive_root / check_run_id(run_id)
    if is_archived(final):
        return final
    report = reports.build(journal, run_id, now=now)
    with staging(archive_root, run_id) as staged:
        (staged / "report.json").write_text(report.to_json(), encoding="utf-8")
        (staged / "report.md").write_text(reports.render_markdown(report), encoding="utf-8")
        journal.export_jsonl(run_id, staged / "journal.jsonl")
        for name, text in (extra_files or {}).items():
            if name in ("report.json", "report.md", "journal.jsonl", MANIFEST) or "/" in name:
                raise errors.ReportError(f"cannot archive an extra file named {name!r}")
            (staged / name).write_text(text, encoding="utf-8")
        return publish(staged, archive_root, run_id, archived_at=now)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of an archived run folder, or ReportError saying what is wrong with it."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
            raise ValueError(f"manifest_version {data.get('manifest_version') if isinstance(data, dict) else None!r}")
        entries = {
            str(name): FileEntry(sha256=str(entry["sha256"]), bytes=int(entry["bytes"]))
            for name, entry in data["files"].items()
        }
        run_id = str(data["run_id"])
        archived_at = data.get("archived_at")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise errors.ReportError(f"{path}: not a readable manifest: {exc}") from None
    if run_id != folder.name:
        raise errors.ReportError(f"{path}: names run {run_id!r}, but lives in {folder.name!r}")
    return Manifest(
        run_id=run_id,
        archived_at=archived_at if isinstance(archived_at, str) else None,
        files=entries,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def run_folders(archive_root: Path) -> list[Path]:
    """Every run folder of the archive (hidden staging folders excluded), archived or not, by name."""
    if not archive_root.is_dir():
        return []
    return sorted(p for p in archive_root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_report(folder: Path, manifest: Manifest) -> model.RunReport:
    """The run's report, checked against its manifest first (a changed report is never indexed)."""
    entry = manifest.files.get("report.json")
    if entry is None or digest(folder / "report.json") != entry:
        raise errors.ReportError(f"{folder / 'report.json'}: does not match its manifest checksum")
    return model.load(folder / "report.json")


def check(folder: Path) -> list[str]:
    """Problems of one archived run folder: each file against its checksum, files the manifest lacks."""
    try:
        manifest = read_manifest(folder)
    except errors.ReportError as exc:
        return [str(exc)]
    problems = []
    for name, entry in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{folder.name}/{name}: missing")
            continue
        found = digest(path)
        if found != entry:
            problems.append(
                f"{folder.name}/{name}: sha256 {found.sha256[:12]}... ({found.bytes:,} bytes), "
                f"manifest says {entry.sha256[:12]}... ({entry.bytes:,} bytes)"
            )
    for name in FILES:
        if name not in manifest.files:
            problems.append(f"{folder.name}/{name}: not in the manifest")
    extra = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and p.name not in manifest.files)
    problems.extend(f"{folder.name}/{name}: not in the manifest (added after archiving)" for name in extra)
    return problems


def verify(archive_root: Path) -> Verified:
    """Check every archived run's files against its manifest."""
    result = Verified()
    for folder in run_folders(archive_root):
        if not is_archived(folder):
            result.unarchived.append(folder.name)
            continue
        problems = check(folder)
        if problems:
            result.problems.extend(problems)
        else:
            result.ok.append(folder.name)
    return result


def sweep(archive_root: Path, *, older_than_s: float = 3600.0) -> list[str]:
    """Remove what an interrupted archiving left (hidden staging and replaced folders); their names.

    Only folders untouched for ``older_than_s``: a younger one may belong to an archiving in progress.
    """
    removed = []
    if archive_root.is_dir():
        now = time.time()
        for path in sorted(archive_root.iterdir()):
            if (
                path.is_dir()
                and path.name.startswith((_STAGING, _REPLACED))
                and now - path.stat().st_mtime >= older_than_s
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    return removed
