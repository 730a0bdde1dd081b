"""Benchmark: `drill run` fanning out over thousands of Kubernetes objects. Figures printed; not a test.

Setup (untimed): ``--namespaces`` (500) namespaces x ``--per-namespace`` (4) labelled objects, the mix of
tests/integration/kube/test_kube_fanout.py (whose ``Fleet`` builds it, 32 requests in flight): CronJobs, HPAs (half
without ``spec.behavior``), Flux Kustomizations / Argo CD Applications, ConfigMaps under a ``generic`` policy; and
drillkit's ``web`` Deployment (the experiment scales it to zero). One drill: its target lists every namespace, its
five policies select the fleet's label; ``target.concurrency`` = ``--concurrency``.

1. ``drill run --auto-respond``: from the run's journal, the suspend phase (first ``suspend.intent`` to the last
   ``suspend``) and the restore phase (first ``restore.intent`` to the last ``restore``); from the API server's
   audit log, the writes per object in each phase (exactly one successful non-dry-run PATCH each way; 409 retries
   and other refusals counted apart); the drill process's peak RSS (``ru_maxrss`` from ``wait4``).
2. ``drill run`` without a responder; once it is ``responding``, ``drill abort RUN --as bench``: from the journal,
   the abort command to the last ``restore``.
After each run every object must equal its snapshot (spec or data, labels, annotations, uid) and carry no marker,
or the benchmark stops: it never reports a broken restore.
3. Detection: 20 trials of drill's responding loop watching a ``web`` Deployment's ``availableReplicas`` in a
   namespace of its own: the responder's scale PATCH returned -> the ``steady-state-restored`` event's time.
Targets: suspend <= 10 s, restore <= 10 s, abort -> all restored <= 10 s, one write per object each way, peak
RSS <= 300 MB, detection latency median <= 0.5 s.

A drill file accepts at most ``limits.LIMITS.namespaces`` (1,000) namespaces: with more, ``drill`` is started through
a wrapper that raises that one limit in the drill process (said in the output: a product limit, not measured here).

``--profile`` (also done when a time target is missed): one more run under ``python -m cProfile -o`` (the main
thread), with every other thread profiled too (``threading.setprofile`` in the wrapper); the merged profile's top
entries are printed.

    eval "$(bash tests/cluster/cluster.sh env)"
    .venv/bin/python scripts/bench_kube_fanout.py [--namespaces 500] [--per-namespace 4] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bench_kube_restore as kr  # noqa: E402 (the scripts folder: sys.path[0] when run as a script)
from kubernetes import client  # noqa: E402

from orchestrator.definitions import limits  # noqa: E402
from tests.integration.kube import drillkit  # noqa: E402 (the repository root is on the path only now)
from tests.integration.kube.conftest import apply_crds  # noqa: E402
from tests.integration.kube.test_kube_fanout import KINDS, Fleet, admin_client  # noqa: E402
from tests.integration.kube.test_kube_watch_detection import latency_trials  # noqa: E402

SUSPEND_S = 10.0
RESTORE_S = 10.0
ABORT_S = 10.0
MEMORY_MB = 300.0
DETECT_S = 0.5
DETECT_TRIALS = 20
AUTO = "ack=0.1s,mitigate=0.2s,resolve=0.3s"
RUN_TIMEOUT_S = 1200.0

WRAPPER = '''"""drill's CLI, with the namespace limit raised to BENCH_MAX_NAMESPACES and every thread profiled into
BENCH_THREAD_PROFILE when set (written by scripts/bench_kube_fanout.py)."""
import dataclasses
import os
import sys
import threading

from orchestrator.definitions import limits

need = int(os.environ.get("BENCH_MAX_NAMESPACES") or 0)
if need > limits.LIMITS.namespaces:
    limits.LIMITS = dataclasses.replace(limits.LIMITS, namespaces=need)
out = os.environ.get("BENCH_THREAD_PROFILE")
if out:
    import atexit
    import cProfile
    import pstats

    profiles = []

    def start(*_):
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)

    def dump():
        stats = None
        for profile in profiles:
            try:
                profile.disable()
                stats = pstats.Stats(profile) if stats is None else stats.add(profile)
            except Exception:
                continue
        if stats is not None:
            stats.dump_stats(out)

    atexit.register(dump)

from orchestrator.cli.main import main

sys.exit(main())
'''


# -- the drill processes --------------------------------------------------------------------------------------


@dataclass
class Bench:
    fleet: Fleet
    kubeconfig: str
    work: Path
    wrapper: Path
    drill: Path
    runs: int = 0

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DRILL_TEST_PAUSE_AT", None)
        env.update(
            DRILL_HOME=str(home),
            DRILL_ARCHIVE=str(home.parent / "archive"),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(REPO),
            BENCH_MAX_NAMESPACES=str(self.fleet.namespaces),
            **extra,
        )
        return env

    def home(self, name: str) -> Path:
        self.runs += 1
        folder = self.work / f"{self.runs:02d}-{name}"
        folder.mkdir(parents=True)
        return folder / "home"

    def start(self, home: Path, *args: str, profile: Path | None = None) -> subprocess.Popen[bytes]:
        cmd = [sys.executable]
        extra: dict[str, str] = {}
        if profile is not None:
            cmd += ["-m", "cProfile", "-o", str(profile.with_suffix(".main.prof"))]
            extra["BENCH_THREAD_PROFILE"] = str(profile.with_suffix(".threads.prof"))
        cmd += [str(self.wrapper), *args]
        log = home.parent / "output.log"
        with log.open("ab") as out:
            return subprocess.Popen(cmd, env=self.env(home, **extra), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def cli(self, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.wrapper), *args],
            env=self.env(home),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ready(self, snapshot: dict[str, dict[str, Any]], what: str) -> None:
        now = self.fleet.state()
        if now != snapshot:
            bad = sorted(k for k in snapshot if now.get(k) != snapshot[k])
            raise SystemExit(f"{what}: {len(bad)} object(s) differ from their snapshot, e.g. {bad[:3]}")
        marked = self.fleet.marked()
        if marked:
            raise SystemExit(f"{what}: {len(marked)} object(s) still marked, e.g. {sorted(marked)[:3]}")


def wait_rusage(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, float]:
    """Exit code and peak RSS (MB) of ``proc``, from ``wait4`` (this child only, not the others)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss / 1024  # KiB on Linux
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"drill did not end within {timeout_s:g} s")
        time.sleep(0.05)


def output_of(home: Path) -> str:
    return (home.parent / "output.log").read_text(encoding="utf-8", errors="replace")


# -- what the journal says ------------------------------------------------------------------------------------


@dataclass
class Timeline:
    run_id: str
    at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def first(self, name: str) -> float:
        return min(self.at[name])

    def last(self, name: str) -> float:
        return max(self.at[name])

    def count(self, name: str) -> int:
        return len(self.at[name])

    @property
    def suspend_s(self) -> float:
        return self.last("suspend") - self.first("suspend.intent")

    @property
    def restore_s(self) -> float:
        return self.last("restore") - self.first("restore.intent")

    @property
    def preflight_s(self) -> float:
        return self.first("suspending") - self.first("preflight")

    @property
    def wall_s(self) -> float:
        return self.last("done") - self.first("planned")


def journal(home: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    db = home / "journal.db"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        try:
            return list(conn.execute(sql, params).fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise


def timeline(home: Path) -> Timeline:
    [(run_id,)] = journal(home, "SELECT run_id FROM runs")
    out = Timeline(str(run_id))
    for name, at in journal(home, "SELECT name, at FROM events WHERE run_id = ?", run_id):
        out.at[str(name)].append(float(at))
    return out


# -- what the audit log says ----------------------------------------------------------------------------------


@dataclass
class Writes:
    """Successful non-dry-run PATCHes per object in a window; 409s and other refusals apart."""

    per_object: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    refused: Counter[int] = field(default_factory=Counter)

    def exactly_one(self, keys: list[str]) -> int:
        return sum(1 for k in keys if self.per_object[k] == 1)

    def spread(self, keys: list[str]) -> str:
        counts = Counter(self.per_object[k] for k in keys)
        return ", ".join(f"{n} write(s): {c}" for n, c in sorted(counts.items()))


def audit_files(audit_log: Path, since: float) -> list[Path]:
    """The audit log and the files it was rotated into since ``since`` (kube-apiserver rotates at 100 MB)."""
    rotated = sorted(
        p for p in audit_log.parent.glob(f"{audit_log.stem}-*{audit_log.suffix}") if p.stat().st_mtime >= since
    )
    return [*rotated, audit_log]


def audit_patches(audit_log: Path, prefix: str, since: float) -> list[tuple[float, str, int, bool]]:
    """(received at, Kind/ns/name, status code, dry run) of every PATCH of the fleet's objects since ``since``."""
    kind_of = {k.plural: k.kind for k in KINDS}
    found: list[tuple[float, str, int, bool]] = []
    for path in audit_files(audit_log, since):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if prefix not in line or '"verb":"patch"' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ref = ev.get("objectRef", {})
                if ev.get("stage") != "ResponseComplete" or ref.get("resource") not in kind_of:
                    continue
                at = datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
                if at < since:
                    continue
                key = f"{kind_of[ref['resource']]}/{ref['namespace']}/{ref['name']}"
                found.append((at, key, int(ev["responseStatus"]["code"]), "dryRun=All" in ev["requestURI"]))
    return found


def lease_writes(audit_log: Path, prefix: str, start: float, end: float) -> int:
    n = 0
    for path in audit_files(audit_log, start):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if prefix in line and '"resource":"leases"' in line and '"stage":"ResponseComplete"' in line:
                    ev = json.loads(line)
                    at = datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
                    if start <= at <= end:
                        n += 1
    return n


def writes_in(patches: list[tuple[float, str, int, bool]], start: float, end: float) -> Writes:
    out = Writes()
    for at, key, code, dry in patches:
        if dry or not start <= at <= end:
            continue
        if code < 300:
            out.per_object[key] += 1
        elif code == 409:
            out.conflicts += 1
        else:
            out.refused[code] += 1
    return out


# -- the runs -------------------------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    value: str
    target: str
    ok: bool | None


def detection(api: client.ApiClient, kubeconfig: str) -> list[Row]:
    """Watch-based detection latency: DETECT_TRIALS times, a ``web`` Deployment scaled to zero, then drill's
    responding loop (the real one, watching ``availableReplicas: 3``) whose responder scales it back; from the
    responder's scale PATCH returning to the ``steady-state-restored`` event's time (tests/integration/kube/
    test_kube_watch_detection.py measures the same, asserted loosely)."""
    core = client.CoreV1Api(api)
    ns = f"bench-detect-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        figures = latency_trials(Path(kubeconfig), api, ns, DETECT_TRIALS)
    finally:
        core.delete_namespace(ns)
    at = sorted(a for a, _ in figures)
    recorded = sorted(r for _, r in figures)
    median = statistics.median(at)
    print(
        f"\ndetection, {len(figures)} trials: scale written -> steady-state-restored at: median {median:.3f} s, "
        f"max {at[-1]:.3f} s; -> the event recorded: median {statistics.median(recorded):.3f} s, "
        f"max {recorded[-1]:.3f} s"
    )
    return [
        Row("detection latency, median of 20 (watch)", f"{median:.3f} s", f"<= {DETECT_S:g} s", median <= DETECT_S),
        Row("detection latency, max of 20 (watch)", f"{at[-1]:.3f} s", "-", None),
    ]


def clean_run(bench: Bench, snapshot: dict[str, dict[str, Any]], audit_log: Path) -> tuple[list[Row], Timeline]:
    home = bench.home("clean")
    started = time.time()
    proc = bench.start(home, "run", str(bench.drill), "--plain", "--auto-respond", AUTO)
    code, rss_mb = wait_rusage(proc, RUN_TIMEOUT_S)
    if code != 0:
        raise SystemExit(f"drill run exited {code}:\n{output_of(home)[-4000:]}")
    bench.ready(snapshot, "after the clean run")
    tl = timeline(home)
    n = len(bench.fleet.objects)
    keys = [o.key for o in bench.fleet.objects]
    if tl.count("suspend") != n or tl.count("restore") != n:
        raise SystemExit(f"the journal has {tl.count('suspend')} suspends, {tl.count('restore')} restores of {n}")
    patches = audit_patches(audit_log, bench.fleet.prefix, started)
    suspend_w = writes_in(patches, tl.first("suspending"), tl.first("restoring"))
    restore_w = writes_in(patches, tl.first("restoring"), tl.last("done") + 1)
    dry = Counter(key for _, key, _, is_dry in patches if is_dry)
    leases = lease_writes(audit_log, bench.fleet.prefix, tl.first("planned"), tl.last("done") + 1)
    ns = bench.fleet.namespaces
    print(
        f"\nclean run {tl.run_id}: exit 0, {n} objects; wall {tl.wall_s:.1f} s (preflight {tl.preflight_s:.1f} s: "
        f"{sum(dry.values())} dry-run PATCHes); Lease writes {leases} ({leases / ns:.1f} per namespace)"
    )
    for what, w in (("suspend", suspend_w), ("restore", restore_w)):
        print(
            f"  {what} writes per object: {w.spread(keys)}; 409 retries {w.conflicts}; "
            f"other refusals {dict(w.refused) or 'none'}"
        )
    rows = [
        Row(
            f"suspend {n} objects (journal)", f"{tl.suspend_s:.2f} s", f"<= {SUSPEND_S:g} s", tl.suspend_s <= SUSPEND_S
        ),
        Row(
            f"restore {n} objects (journal)", f"{tl.restore_s:.2f} s", f"<= {RESTORE_S:g} s", tl.restore_s <= RESTORE_S
        ),
        Row(
            "suspend: objects written exactly once",
            f"{suspend_w.exactly_one(keys)}/{n} (+{suspend_w.conflicts} 409)",
            "all",
            suspend_w.exactly_one(keys) == n,
        ),
        Row(
            "restore: objects written exactly once",
            f"{restore_w.exactly_one(keys)}/{n} (+{restore_w.conflicts} 409)",
            "all",
            restore_w.exactly_one(keys) == n,
        ),
        Row("peak RSS of drill run", f"{rss_mb:.0f} MB", f"<= {MEMORY_MB:g} MB", rss_mb <= MEMORY_MB),
        Row("preflight (not a target)", f"{tl.preflight_s:.2f} s", "-", None),
    ]
    return rows, tl


def abort_run(bench: Bench, snapshot: dict[str, dict[str, Any]]) -> list[Row]:
    home = bench.home("abort")
    proc = bench.start(home, "run", str(bench.drill), "--plain")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not journal(home, "SELECT run_id FROM runs WHERE state = 'responding'"):
        if proc.poll() is not None:
            raise SystemExit(f"drill run exited {proc.returncode} before responding:\n{output_of(home)[-4000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("drill run did not reach responding")
        time.sleep(0.1)
    [(run_id,)] = journal(home, "SELECT run_id FROM runs")
    sent = time.time()
    aborted = bench.cli(home, "abort", str(run_id), "--as", "bench", "-m", "benchmark")
    if aborted.returncode != 0:
        proc.kill()
        raise SystemExit(f"drill abort exited {aborted.returncode}: {aborted.stdout}{aborted.stderr}")
    code, rss_mb = wait_rusage(proc, RUN_TIMEOUT_S)
    exited = time.time()
    if code != 4:
        raise SystemExit(f"the aborted drill run exited {code} (expected 4):\n{output_of(home)[-4000:]}")
    bench.ready(snapshot, "after the aborted run")
    tl = timeline(home)
    n = len(bench.fleet.objects)
    if tl.count("restore") != n:
        raise SystemExit(f"the aborted run's journal has {tl.count('restore')} restores of {n}")
    commanded = tl.first("abort")
    took = tl.last("restore") - commanded
    noticed = tl.first("restoring") - commanded
    print(
        f"\naborted run {run_id}: exit 4; abort command journaled {commanded - sent:.2f} s after `drill abort` "
        f"started; abort -> restoring {noticed:.2f} s, -> all {n} restored {took:.2f} s "
        f"(restore phase {tl.restore_s:.2f} s), "
        f"-> process exit {exited - commanded:.1f} s; peak RSS {rss_mb:.0f} MB"
    )
    return [Row(f"abort -> all {n} restored (journal)", f"{took:.2f} s", f"<= {ABORT_S:g} s", took <= ABORT_S)]


def profiled_run(bench: Bench, snapshot: dict[str, dict[str, Any]]) -> None:
    home = bench.home("profile")
    prof = home.parent / "drill"
    proc = bench.start(home, "run", str(bench.drill), "--plain", "--auto-respond", AUTO, profile=prof)
    wait_rusage(proc, RUN_TIMEOUT_S)  # cProfile's runner exits 0 whatever the run did: the journal says
    bench.ready(snapshot, "after the profiled run")
    tl = timeline(home)
    files = [p for p in (prof.with_suffix(".main.prof"), prof.with_suffix(".threads.prof")) if p.exists()]
    print(
        f"\nprofile of run {tl.run_id} (under cProfile, slower): preflight {tl.preflight_s:.1f} s, suspend "
        f"{tl.suspend_s:.1f} s, restore {tl.restore_s:.1f} s; profiles {', '.join(str(p) for p in files)}"
    )
    if not files:
        return
    stats = pstats.Stats(str(files[0]))
    for more in files[1:]:
        stats.add(str(more))
    print("  (times summed over threads: a worker blocked on a lock or a socket counts its wait)")
    digest(stats, tl)
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(15)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    print("  top 15 by own time:")
    for ln in lines[start : start + 16]:
        print("   ", ln[:160])


Entry = tuple[int, int, float, float, dict[Any, Any]]


def entries(stats: pstats.Stats, path_end: str, func: str) -> list[tuple[Any, Entry]]:
    raw: dict[Any, Entry] = stats.stats  # type: ignore[attr-defined]
    return [(k, v) for k, v in raw.items() if k[0].endswith(path_end) and k[2] == func]


def digest(stats: pstats.Stats, tl: Timeline) -> None:
    """Where the time goes, in drill's terms: API requests by caller, journal writes, the client's overhead."""
    calls = entries(stats, "orchestrator/adapters/kube.py", "_call")
    if calls:
        _, (_, n, _, ct, callers) = calls[0]
        print(f"  API requests: {n}, {ct:.0f} s in them; by KubeApi method:")
        raw: dict[Any, Entry] = stats.stats  # type: ignore[attr-defined]
        for key, (_, cn, _, cct) in sorted(callers.items(), key=lambda kv: -kv[1][1]):
            who = ""
            if key[2] in ("get", "patch"):
                by = raw[key][4]
                while len(by) == 1 and next(iter(by))[2].startswith("_") and next(iter(by)) in raw:
                    by = raw[next(iter(by))][4]  # up through private one-caller helpers (KubeSuspender._get)
                parts = []
                for ckey, c in sorted(by.items(), key=lambda kv: -kv[1][1]):
                    inner = raw[ckey][4] if ckey[2].startswith("_") and ckey in raw else {}
                    more = ", ".join(f"{k[2]} {v[1]}" for k, v in sorted(inner.items(), key=lambda kv: -kv[1][1]))
                    parts.append(f"{ckey[2]} {c[1]}" + (f" ({more})" if more else ""))
                who = "; ".join(parts)
            print(f"    {key[2]:16s} {cn:6d}  {cct:7.0f} s   {who[:150]}")
    attempt = entries(stats, "orchestrator/restore/restoring.py", "attempt")
    if attempt:
        _, (_, n, tt, ct, _) = attempt[0]
        print(
            f"  restore-path journal writes: {n}, one at a time under TolerantJournal's lock: {ct - tt:.1f} s writing "
            f"(the restore phase took {tl.restore_s:.1f} s), {tt:.0f} s waiting for the lock (all workers)"
        )
    for path_end, func in (
        ("orchestrator/journal/store.py", "update_suspension"),
        ("orchestrator/journal/store.py", "record_intents"),
        ("orchestrator/journal/store.py", "record_priors"),
        ("orchestrator/journal/store.py", "update_suspensions"),
        ("orchestrator/targets/kubernetes.py", "preflight"),
        ("orchestrator/targets/kubernetes.py", "renew_lock"),
        ("kubernetes/config/kube_config.py", "_refresh_api_key"),
        ("urllib/request.py", "getproxies_environment"),
    ):
        for _, (_, n, _, ct, _) in entries(stats, path_end, func):
            print(f"  {Path(path_end).stem}.{func}: {n} calls, {ct:.1f} s")


# -- main -----------------------------------------------------------------------------------------------------


def audit_log_path() -> Path:
    if os.environ.get("DRILL_KUBE_AUDIT_LOG"):
        return Path(os.environ["DRILL_KUBE_AUDIT_LOG"])
    out = subprocess.run(["bash", str(kr.CLUSTER_SH), "env"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        if key == "DRILL_KUBE_AUDIT_LOG":
            return Path(value.strip("'\""))
    raise SystemExit("no audit log: start the test cluster (tests/cluster/cluster.sh start)")


@contextlib.contextmanager
def fleet_of(kubeconfig: str, args: argparse.Namespace) -> Iterator[Fleet]:
    api = admin_client(kubeconfig)
    fleet = Fleet(api, f"bench-fanout-{uuid.uuid4().hex[:6]}", args.namespaces, args.per_namespace, workers=32)
    try:
        apply_crds(api)  # a freshly started cluster serves no Flux or Argo CD kinds yet
        t = time.perf_counter()
        fleet.create()
        fleet.add_web()
        print(
            f"fleet {fleet.prefix}-NNN: {args.namespaces} namespaces x {args.per_namespace} = {len(fleet.objects)} "
            f"objects ({', '.join(f'{c} {k}' for k, c in Counter(o.kind.kind for o in fleet.objects).items())}) "
            f"created in {time.perf_counter() - t:.1f} s"
        )
        yield fleet
    finally:
        if args.keep:
            print(f"kept: namespaces {fleet.prefix}-*")
        else:
            fleet.delete()
        api.close()  # type: ignore[no-untyped-call]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--per-namespace", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16, help="the drill's target.concurrency")
    parser.add_argument("--kubeconfig", help="default: the test cluster's (tests/cluster/cluster.sh env)")
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile, whatever the figures")
    parser.add_argument("--no-profile", action="store_true", help="no profile, even when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces (and the temp folder)")
    args = parser.parse_args()
    kubeconfig = kr.cluster_kubeconfig(args.kubeconfig)
    audit_log = audit_log_path()
    if args.namespaces > limits.LIMITS.namespaces:
        print(
            f"NOTE: a drill file accepts at most {limits.LIMITS.namespaces} target namespaces "
            f"(limits.LIMITS.namespaces); drill runs here through a wrapper that raises it to {args.namespaces}"
        )
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="drill-bench-fanout-"))
        if not args.keep:
            stack.callback(lambda: subprocess.run(["rm", "-rf", str(work)], check=False))
        fleet = stack.enter_context(fleet_of(kubeconfig, args))
        wrapper = work / "drill_wrapper.py"
        wrapper.write_text(WRAPPER, encoding="utf-8")
        drill = drillkit.write_drill(
            work / "drill",
            fleet.names[0],
            Path(kubeconfig),
            name="bench-fanout",
            policies=fleet.policies(),
            max_duration="20m",
            target=fleet.target(kubeconfig, concurrency=args.concurrency),
            participants=[{"name": "alice", "role": "responder"}, {"name": "bench", "role": "facilitator"}],
        )
        bench = Bench(fleet, kubeconfig, work, wrapper, drill)
        snapshot = fleet.state()
        if len(snapshot) != len(fleet.objects):
            raise SystemExit(f"listed {len(snapshot)} of the {len(fleet.objects)} objects created")

        def web() -> None:
            # After an abort the fault stays: chaoslib's default rollback strategy plays no rollback for a failed
            # experiment. The benchmark mitigates itself, as a responder would, before the next run.
            apps = client.AppsV1Api(fleet.api)
            if not apps.read_namespaced_deployment("web", fleet.names[0]).spec.replicas:
                apps.patch_namespaced_deployment("web", fleet.names[0], {"spec": {"replicas": 3}})
            deadline = time.monotonic() + 120
            while not drillkit.web_available(fleet.api, fleet.names[0]):
                if time.monotonic() > deadline:
                    raise SystemExit("web did not become available")
                time.sleep(0.5)

        web()
        rows, _ = clean_run(bench, snapshot, audit_log)
        web()
        rows += abort_run(bench, snapshot)
        rows += detection(fleet.api, kubeconfig)
        print(f"\n{'figure':44s} {'value':>22s}  {'target':>10s}  result")
        for r in rows:
            verdict = "-" if r.ok is None else "PASS" if r.ok else "FAIL"
            print(f"{r.what:44s} {r.value:>22s}  {r.target:>10s}  {verdict}")
        missed = [r for r in rows if r.ok is False]
        slow = [r for r in missed if r.what.startswith(("suspend ", "restore ", "abort"))]
        if args.profile or (slow and not args.no_profile):
            web()
            profiled_run(bench, snapshot)
        return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
