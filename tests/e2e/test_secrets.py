"""No secret a user can type reaches the journal, the archive, the terminal or an error, and no control
sequence reaches a terminal or a report raw.

A secret of every kind ``redaction`` knows is planted in every field a user can fill (drill file,
experiment ``secrets`` and ``configuration``, responder messages, a participant name, a command's
``--as``), a real drill runs on the sandbox and is aborted from another terminal, and then every
byte the run left behind (DRILL_HOME with journal.db and its -wal, the archive) and every line it
printed is searched for each planted value. Each value contains ``PLANTED`` so a hit is unambiguous.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml

from orchestrator.sandbox import control
from tests.conftest import NO_AUTOMATION, REPO, DrillEnv, copy_drill, drill_cmd, journal_rows, read_report, wait_for

pytestmark = pytest.mark.e2e


def _slack(kind: str, rest: str) -> str:
    """A Slack-token-shaped value, built here so that no token-shaped literal is committed."""
    return f"xo{'x'}{kind}-{rest}" if kind != "app" else f"xa{'pp'}-{rest}"


#: name -> the secret value itself (what must never be found) and the text a user would paste it in.
PLANTED: dict[str, tuple[str, str]] = {
    "slack bot token": (_slack("b", "PLANTED-slack-0001"), "the bot token is " + _slack("b", "PLANTED-slack-0001")),
    "slack app token": (_slack("app", "1-PLANTED-app-0002"), "app token " + _slack("app", "1-PLANTED-app-0002")),
    "github token": ("ghp_PLANTEDgithub000000000003", "ci uses ghp_PLANTEDgithub000000000003"),
    "jwt": (
        "eyJhbGciOiJIUzI1NiJ9PLANTED.eyJzdWIiOiJQTEFOVEVEIn0.PLANTEDsig04",
        "sa token eyJhbGciOiJIUzI1NiJ9PLANTED.eyJzdWIiOiJQTEFOVEVEIn0.PLANTEDsig04",
    ),
    "pem": (
        "MIIEvPLANTEDpemBODY05",
        "key -----BEGIN PRIVATE KEY-----\nMIIEvPLANTEDpemBODY05\n-----END PRIVATE KEY----- pasted",
    ),
    "password pair": ("PLANTED-password-06", "db password=PLANTED-password-06 works"),
    "authorization header": ("PLANTEDbearer0000000007", "sent Authorization: Bearer PLANTEDbearer0000000007"),
    "aws access key id": ("AKIAPLANTED000000008", "aws id AKIAPLANTED000000008"),
    "aws secret key": (
        "PLANTEDawsSecret/K7MDENG/bPxRfiCY000009",
        "aws_secret_access_key=PLANTEDawsSecret/K7MDENG/bPxRfiCY000009",
    ),
    "azure account key": (
        "PLANTEDazureKey10+/==",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=PLANTEDazureKey10+/==;EndpointSuffix=x",
    ),
    "azure sas": ("PLANTEDsas11", "SharedAccessSignature=sv=2021&ss=b&sig=PLANTEDsas11"),
    "gcp private key": ("PLANTEDgcp12", '{"type": "service_account", "private_key": "PLANTEDgcp12"}'),
    "url password": ("PLANTEDurl13", "db at postgres://app:PLANTEDurl13@db.internal:5432/x"),
    "random after token": ("8fK2mQ9xPLANTEDLp3vT7wZ1bN4cR6y14", "the token is 8fK2mQ9xPLANTEDLp3vT7wZ1bN4cR6y14"),
}
#: A participant name that is a Slack token (the name pattern allows it), and a stranger's.
PARTICIPANT_TOKEN = _slack("b", "PLANTED-participant-15")
STRANGER_TOKEN = _slack("p", "PLANTED-stranger-16")
#: Values only an experiment holds: inline secrets, secret-looking configuration, an env secret resolved at run time.
EXPERIMENT_SECRETS = {
    "experiment inline password": "PLANTED-experiment-password-17",
    "experiment inline token": _slack("b", "PLANTED-experiment-18"),
    "experiment configuration token": "PLANTED-experiment-config-19",
    "drill configuration password": "PLANTED-drill-config-20",
    "env secret resolved at run time": "PLANTED-env-resolved-21",
}
#: A note that would repaint a terminal, hide a link and reverse text, if shown raw.
ESCAPES = (
    "\x1b[2J\x1b[31mred\x1b[0m \x1b]8;;http://PLANTED-evil\x1b\\click\x1b]8;;\x1b\\ \x9b1m \u202eexe.txt\rdone\x07"
)
RAW_CONTROLS = ("\x1b", "\x9b", "\u202e", "\r", "\x07")


def everything(*texts: str) -> str:
    return " | ".join(texts)


def all_secret_texts() -> str:
    return everything(*(text for _, text in PLANTED.values()))


def secret_values() -> dict[str, str]:
    values = {name: value for name, (value, _) in PLANTED.items()}
    values.update(EXPERIMENT_SECRETS)
    values["stranger --as token"] = STRANGER_TOKEN
    return values


def found_in(value: str, printed: dict[str, str], files: dict[str, bytes]) -> list[str]:
    return [where for where, text in printed.items() if value in text] + [
        name for name, data in files.items() if value.encode() in data
    ]


def left_on_disk(drill_env: DrillEnv) -> dict[str, bytes]:
    """Every file of DRILL_HOME (journal.db and its -wal included) and of the archive, byte for byte."""
    return {
        str(path.relative_to(drill_env.home.parent)): path.read_bytes()
        for root in (drill_env.home, drill_env.archive)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def planted_experiment(folder: Path) -> Path:
    experiment = json.loads((REPO / "experiments" / "sandbox-kill-service.json").read_text(encoding="utf-8"))
    experiment["description"] = everything(experiment["description"], all_secret_texts())
    experiment["secrets"] = {
        "db": {
            "password": EXPERIMENT_SECRETS["experiment inline password"],
            "from_env": {"type": "env", "key": "DRILL_TEST_PLANTED_SECRET"},
        },
        "slack": {"token": EXPERIMENT_SECRETS["experiment inline token"]},
    }
    experiment["configuration"]["api_token"] = EXPERIMENT_SECRETS["experiment configuration token"]
    experiment["configuration"]["notes"] = all_secret_texts()
    path = folder / "planted-experiment.json"
    path.write_text(json.dumps(experiment), encoding="utf-8")
    return path


def planted_drill(folder: Path, *, with_token_participant: bool) -> Path:
    participants = [{"name": "alice", "role": "responder"}, {"name": "bob", "role": "facilitator"}]
    if with_token_participant:
        participants.append({"name": PARTICIPANT_TOKEN, "role": "observer"})
    path = copy_drill(
        folder,
        "planted",
        base=NO_AUTOMATION,
        participants=participants,
        hints=[{"text": f"hint: {all_secret_texts()}"}],
        failureMode=PLANTED["password pair"][1].replace(" ", "-"),
        guardrails={
            "maxDuration": "5m",
            "checkInterval": "1s",
            "abortWhen": [
                {
                    "name": "always-fine",
                    "provider": {"type": "process", "path": "true", "arguments": PLANTED["password pair"][1]},
                    "tolerance": 0,
                }
            ],
        },
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["metadata"]["description"] = all_secret_texts()
    data["metadata"]["owner"] = PLANTED["slack bot token"][1]
    data["metadata"]["labels"] = {
        "password": PLANTED["password pair"][0],
        "note": PLANTED["aws access key id"][1],
        PLANTED["github token"][0]: "a token as a label key",
    }
    data["spec"]["policies"][0]["description"] = all_secret_texts()
    data["spec"]["experiment"] = {
        "path": str(planted_experiment(folder)),
        "configuration": {
            "db_password": EXPERIMENT_SECRETS["drill configuration password"],
            "runbook": PLANTED["url password"][1],
        },
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def start_run(drill_env: DrillEnv, drill: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        drill_cmd("run", str(drill), "--plain"),
        env=drill_env.env(DRILL_TEST_PLANTED_SECRET=EXPERIMENT_SECRETS["env secret resolved at run time"]),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def latest_run(drill_env: DrillEnv) -> tuple[str, str] | None:
    rows = journal_rows(drill_env.home, "SELECT run_id, state FROM runs ORDER BY created_at DESC LIMIT 1")
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def test_no_planted_secret_is_written_or_shown_anywhere(
    tmp_path: Path,
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    run_drill: Callable[..., CompletedProcess[str]],
) -> None:
    printed: dict[str, str] = {}  # where -> what a command printed

    def cli(where: str, *args: str) -> CompletedProcess[str]:
        done = run_drill(*args, DRILL_TEST_PLANTED_SECRET=EXPERIMENT_SECRETS["env secret resolved at run time"])
        printed[where] = done.stdout + done.stderr
        return done

    drill = planted_drill(tmp_path, with_token_participant=False)
    assert cli("drill validate", "validate", str(drill)).returncode == 0
    proc = start_run(drill_env, drill)

    def responding() -> str | None:
        assert proc.poll() is None, "drill run exited before responding:\n" + "".join(proc.communicate())
        run = latest_run(drill_env)
        return run[0] if run and run[1] == "responding" else None

    run_id = str(wait_for(responding, timeout_s=60, what="the run to reach responding"))
    assert cli("drill ack -m", "ack", run_id, "--as", "alice", "-m", PLANTED["slack bot token"][1]).returncode == 0
    noted = cli("drill note", "note", run_id, "--as", "bob", "-m", f"note: {all_secret_texts()}")
    assert noted.returncode == 0, noted.stderr
    assert cli("drill note (escapes)", "note", run_id, "--as", "bob", "-m", ESCAPES).returncode == 0
    diagnosed = cli("drill diagnosed -m", "diagnosed", run_id, "--as", "alice", "-m", all_secret_texts())
    assert diagnosed.returncode == 0, diagnosed.stderr

    # A note needs text: refused, clearly, and nothing is written.
    def notes() -> int:
        return sum('"name": "note"' in line for line in run_drill("journal", run_id).stdout.splitlines())

    before = notes()
    for empty in ("", "   \n\t "):
        refused = cli("drill note (empty)", "note", run_id, "--as", "bob", "-m", empty)
        assert refused.returncode != 0 and "a note needs text" in refused.stderr, refused.stderr
    assert notes() == before
    # A token typed as --as by someone who is not a participant: refused, without echoing it.
    stranger = cli("drill note --as <stranger token>", "note", run_id, "--as", STRANGER_TOKEN, "-m", "hello")
    assert stranger.returncode != 0
    cli("drill status", "status", run_id)
    cli("drill status --json (responding)", "status", run_id, "--json")
    aborted = cli("drill abort -m", "abort", run_id, "--as", "bob", "-m", everything("stop", all_secret_texts()))
    assert aborted.returncode == 0, aborted.stderr
    out, err = proc.communicate(timeout=90)
    printed["drill run stdout"] = out
    printed["drill run stderr"] = err
    assert proc.returncode == 4, out + err
    assert sandbox.status().autorestart is True
    cli("drill status (ended)", "status", run_id)
    cli("drill status --json", "status", run_id, "--json")
    journal_out = cli("drill journal", "journal", run_id)
    cli("drill runs", "runs")

    # What this run left on disk, byte for byte (journal.db and its -wal included), and what it printed.
    files = left_on_disk(drill_env)
    assert any(name.endswith("journal.db") for name in files) and any(name.endswith("report.md") for name in files)
    leaks: dict[str, list[str]] = {}
    for what, value in secret_values().items():
        found = found_in(value, printed, files)
        if found:
            leaks[what] = found
    controls = {
        where: [repr(c) for c in RAW_CONTROLS if c in text]
        for where, text in printed.items()
        if any(c in text for c in RAW_CONTROLS)
    }
    for name, data in files.items():
        if b"\x1b]8;;http://PLANTED-evil" in data or "\u202eexe".encode() in data:
            controls.setdefault(name, []).append("raw escape sequence")

    # The journal prints JSON: control characters come out escaped (\u001b), never raw.
    assert all(c not in journal_out.stdout for c in RAW_CONTROLS)
    # Reports are made from the journal but cleaned on the way out: safe whatever the journal holds.
    report = read_report(drill_env.archive / run_id)
    assert report["outcome"] == "aborted"
    markdown = (drill_env.archive / run_id / "report.md").read_text(encoding="utf-8")
    assert "␛\\[2J" in markdown and "\\<U+202E\\>" in markdown  # the reader sees something was there
    assert all(line.count("|") - line.count("\\|") == 5 for line in markdown.splitlines() if line.startswith("| 20"))
    assert not leaks and not controls, (
        "secrets found (secret -> where):\n"
        + "\n".join(f"  {what}: {', '.join(where)}" for what, where in sorted(leaks.items()))
        + "\nraw control characters (where -> which):\n"
        + "\n".join(f"  {where}: {', '.join(which)}" for where, which in sorted(controls.items()))
    )


def test_a_token_as_participant_name_is_refused_or_never_shown(
    tmp_path: Path,
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    run_drill: Callable[..., CompletedProcess[str]],
) -> None:
    """A Slack token pasted as a participant name: refused by validation without being echoed, or
    accepted and then never written or shown, while the drill still takes that participant's commands."""
    env = {"DRILL_TEST_PLANTED_SECRET": EXPERIMENT_SECRETS["env secret resolved at run time"]}
    drill = planted_drill(tmp_path, with_token_participant=True)
    validated = run_drill("validate", str(drill), **env)
    printed = {"drill validate": validated.stdout + validated.stderr}
    if validated.returncode != 0:
        assert "participants" in validated.stderr, validated.stderr
        assert PARTICIPANT_TOKEN not in printed["drill validate"]
        return
    proc = start_run(drill_env, drill)

    def responding() -> str | None:
        assert proc.poll() is None, "drill run exited before responding:\n" + "".join(proc.communicate())
        run = latest_run(drill_env)
        return run[0] if run and run[1] == "responding" else None

    run_id = str(wait_for(responding, timeout_s=60, what="the run to reach responding"))
    for who, args in (
        ("alice", ("ack", run_id, "--as", "alice")),
        ("the token participant", ("note", run_id, "--as", PARTICIPANT_TOKEN, "-m", "seen")),
        ("bob", ("abort", run_id, "--as", "bob", "-m", "done")),
    ):
        done = run_drill(*args, **env)
        printed[f"drill {args[0]} as {who}"] = done.stdout + done.stderr
        assert done.returncode == 0, f"{who}: {done.stderr}"
    out, err = proc.communicate(timeout=90)
    printed["drill run"] = out + err
    printed["drill status"] = run_drill("status", run_id, **env).stdout
    assert proc.returncode == 4, out + err
    assert found_in(PARTICIPANT_TOKEN, printed, left_on_disk(drill_env)) == []
