"""Records for journal tests: one run, one suspension, with the fields a test rarely cares about filled in."""

from __future__ import annotations

from orchestrator import records

S = records.RunState
SS = records.SuspensionState


def make_run(run_id: str = "d-1", at: float = 100.0, state: records.RunState = S.PLANNED) -> records.RunRecord:
    return records.RunRecord(
        run_id=run_id,
        drill_name="d",
        drill_path="/x/d.yaml",
        mode=records.RunMode.NO_AUTOMATION,
        target_key="sandbox:/tmp/x",
        state=state,
        created_at=at,
        updated_at=at,
        pid=1,
        host="h",
        deadline_at=at + 60,
        definition={"k": 1},
        experiment={"title": "t"},
        owner="host:1",
    )


def make_suspension(run_id: str = "d-1", policy: str = "p", *, prior_known: bool = True) -> records.SuspensionRecord:
    return records.SuspensionRecord(
        run_id=run_id,
        policy=policy,
        kind="sandbox-autorestart",
        target_key="sandbox:/tmp/x",
        prior={"autorestart": True} if prior_known else {},
        deadline_at=160.0,
        state=SS.INTENDED,
        updated_at=101.0,
        prior_known=prior_known,
    )
