"""Hidden incidents, the pure logic: replacements, windowing, the sliding peak, ranking and the threshold,
fed plain observation records (no cluster, no client)."""

from __future__ import annotations

import json

import pytest

from orchestrator import errors
from orchestrator.adapters.kubeevents import Observation, ServiceRef
from orchestrator.archive import incidents

T0 = 1_800_000_000.0  # a fixed moment; the window is [T0, T0 + 2 h]
HOUR = 3600.0
WEB = ServiceRef("shop", "Deployment", "web")
API = ServiceRef("shop", "Deployment", "api")
DB = ServiceRef("shop", "StatefulSet", "db")


def created(service: ServiceRef, owner: str, pod: str, at: float, source: str = "events.k8s.io/v1") -> Observation:
    return Observation("pod_created", service, at, owner, f"Pod/{pod}", "SuccessfulCreate", source=source)


def live(service: ServiceRef, owner: str, pod: str, at: float) -> Observation:
    return Observation("pod_live", service, at, owner, f"Pod/{pod}", source="pod")


def deleted(service: ServiceRef, owner: str, pod: str, at: float) -> Observation:
    return Observation("pod_deleted_by_controller", service, at, owner, f"Pod/{pod}", "SuccessfulDelete")


def restart(service: ServiceRef, at: float) -> Observation:
    return Observation("container_restart", service, at, "", "Pod/x", "restartCount")


def report(obs: list[Observation], **kw: object) -> incidents.HiddenIncidentsReport:
    return incidents.build(obs, since=T0, until=T0 + 2 * HOUR, **kw)  # type: ignore[arg-type]


def test_peak_is_a_sliding_half_open_period() -> None:
    assert incidents.peak([], HOUR) == (0, None)
    assert incidents.peak([T0, T0 + 10, T0 + 20, T0 + HOUR - 1], HOUR) == (4, T0)
    assert incidents.peak([T0, T0 + HOUR], HOUR) == (1, T0)  # exactly an hour apart: two periods
    # 2 in the first bucket and 2 in the second, but 4 within one sliding hour across the boundary
    assert incidents.peak([T0 + 3000, T0 + 3500, T0 + 3700, T0 + 4000], HOUR) == (4, T0 + 3000)


def test_buckets_from_the_window_start_and_out_of_window_moments_ignored() -> None:
    moments = [T0 - 1, T0, T0 + HOUR - 1, T0 + HOUR, T0 + 2 * HOUR, T0 + 2 * HOUR + 1]
    assert incidents.buckets(moments, T0, T0 + 2 * HOUR, HOUR) == [2, 2]
    assert incidents.buckets([T0 + 5], T0, T0 + 90 * 60, HOUR) == [1, 0]  # the last bucket is shorter
    assert incidents.buckets([], T0, T0, HOUR) == [0]


def test_rollout_scale_down_and_live_pods_are_not_replacements() -> None:
    rs = "ReplicaSet/web-1"
    obs = [created(WEB, rs, f"web-{i}", T0 + i) for i in range(5)]  # rolled out 5
    obs += [deleted(WEB, rs, "web-3", T0 + 100), deleted(WEB, rs, "web-4", T0 + 100)]  # scaled down to 3
    obs += [live(WEB, rs, f"web-{i}", T0 + i) for i in range(3)]
    assert incidents.replacements(obs) == []
    assert report(obs).services == []


def test_lost_pods_make_the_latest_creations_replacements_and_same_pod_sources_merge() -> None:
    rs = "ReplicaSet/web-1"
    obs = [created(WEB, rs, "web-a", T0), created(WEB, rs, "web-b", T0)]  # rollout of 2
    # web-a lost three times: replaced by c, d, e (e lost too, replaced by f); live now: b and f
    for n, pod in enumerate(["web-c", "web-d", "web-e", "web-f"]):
        obs.append(created(WEB, rs, pod, T0 + 600 * (n + 1)))
    # the live pods' creationTimestamp, one second off the event: the same creation, not a second one
    obs += [created(WEB, rs, "web-b", T0 + 1, source="pod"), live(WEB, rs, "web-b", T0 + 1)]
    obs += [created(WEB, rs, "web-f", T0 + 2401, source="pod"), live(WEB, rs, "web-f", T0 + 2401)]
    recs = incidents.replacements(obs)
    assert [(r.object, r.at) for r in recs] == [
        ("Pod/web-c", T0 + 600),
        ("Pod/web-d", T0 + 1200),
        ("Pod/web-e", T0 + 1800),
        ("Pod/web-f", T0 + 2400),
    ]
    assert {r.service for r in recs} == {WEB}


def test_statefulset_recreating_the_same_pod_name_counts_each_creation() -> None:
    sts = "StatefulSet/db"
    obs = [created(DB, sts, "db-0", T0 + 60 * i) for i in range(6)]  # db-0 created 6 times
    obs += [created(DB, sts, "db-0", T0 + 300, source="pod"), live(DB, sts, "db-0", T0 + 300)]
    recs = incidents.replacements(obs)
    assert [r.at for r in recs] == [T0 + 60 * i for i in range(1, 6)]


def test_threshold_flags_more_than_n_within_one_hour_not_n() -> None:
    three = [restart(API, T0 + 60 * i) for i in range(3)]
    four = [restart(WEB, T0 + 60 * i) for i in range(4)]
    doc = report(three + four)
    rows = {r.service: r for r in doc.services}
    assert rows["shop/Deployment/api"].peak == 3 and not rows["shop/Deployment/api"].flagged
    assert rows["shop/Deployment/web"].peak == 4 and rows["shop/Deployment/web"].flagged
    assert doc.flagged == ["shop/Deployment/web"]
    assert "may hide an incident" in (rows["shop/Deployment/web"].why or "")
    assert rows["shop/Deployment/api"].why is None
    # the threshold and the period are configurable
    assert report(three + four, threshold=2).flagged == ["shop/Deployment/web", "shop/Deployment/api"]  # rank order
    assert report(three + four, threshold=3, period_s=100.0).flagged == []  # at most 2 within 100 s


def test_many_recoveries_spread_out_are_ranked_but_not_flagged() -> None:
    spread = [restart(WEB, T0 + i * 1900) for i in range(4)]  # 4 in 2 h, never more than 2 in one hour
    doc = report(spread)
    (row,) = doc.services
    assert (row.recoveries, row.peak, row.flagged) == (4, 2, False)
    assert [b.count for b in row.buckets] == [2, 2]


def test_window_counts_only_inside_and_evidence_is_shown_not_counted() -> None:
    obs = [restart(WEB, T0 - 10), restart(WEB, T0 + 10), restart(WEB, T0 + 2 * HOUR + 10)]
    obs.append(Observation("evidence", WEB, T0 + 20, "", "Pod/web-x", "BackOff"))
    obs.append(Observation("evidence", WEB, T0 - 20, "", "Pod/web-x", "Killing"))
    (row,) = report(obs).services
    assert row.recoveries == 1
    assert row.evidence == {"BackOff": 1}


def test_every_recovery_kind_is_counted_per_kind() -> None:
    obs = [
        restart(WEB, T0 + 1),
        Observation("autoscaler_rescale", WEB, T0 + 2, "", "HorizontalPodAutoscaler/web", "SuccessfulRescale"),
        Observation("operator_reaction", WEB, T0 + 3, "", "Application/web", "OperationStarted", estimated=True),
        created(WEB, "ReplicaSet/web-1", "web-a", T0 - 100),  # rollout, before the window
        created(WEB, "ReplicaSet/web-1", "web-b", T0 + 4),  # replaces web-a (gone)
        live(WEB, "ReplicaSet/web-1", "web-b", T0 + 4),
    ]
    (row,) = report(obs).services
    assert row.by_kind == {"pod_replaced": 1, "container_restart": 1, "autoscaler_rescale": 1, "operator_reaction": 1}
    assert (row.recoveries, row.estimated, row.peak, row.flagged) == (4, 1, 4, True)


def test_ranking_by_recoveries_then_peak_then_key_and_top_keeps_flagged() -> None:
    c = ServiceRef("a", "Deployment", "c")
    b = ServiceRef("a", "Deployment", "b")
    obs = [restart(WEB, T0 + i * 2000) for i in range(4)]  # 4, peak 2
    obs += [restart(API, T0 + i) for i in range(4)]  # 4, peak 4: flagged
    obs += [restart(c, T0 + i * 4000) for i in range(2)]  # 2, peak 1
    obs += [restart(b, T0 + i * 4000) for i in range(2)]  # 2, peak 1
    doc = report(obs)
    assert [(r.rank, r.service) for r in doc.services] == [
        (1, "shop/Deployment/api"),
        (2, "shop/Deployment/web"),
        (3, "a/Deployment/b"),
        (4, "a/Deployment/c"),
    ]
    assert (doc.total_recoveries, doc.services_with_recoveries) == (12, 4)
    assert [r.service for r in report(obs, top=1).services] == ["shop/Deployment/api"]
    # a flagged service is listed even below the top
    obs += [restart(c, T0 + 5000 + i) for i in range(3)]  # c: 5, peak 4 (flagged)... now first
    obs += [restart(b, T0 + 5000 + i) for i in range(1)]
    top2 = report(obs, top=1)
    assert [r.service for r in top2.services] == ["a/Deployment/c", "shop/Deployment/api"]
    assert all(r.flagged for r in top2.services)


def test_the_document_is_versioned_states_its_definitions_and_reads_back() -> None:
    doc = report([restart(WEB, T0 + i) for i in range(5)], context="ctx", namespaces=["shop"])
    data = json.loads(json.dumps(doc.model_dump(mode="json")))
    assert data["schema_version"] == incidents.SCHEMA_VERSION == 1
    assert data["report"] == "hidden-incidents"
    assert data["window"] == {
        "since": "2027-01-15T08:00:00.000Z",
        "until": "2027-01-15T10:00:00.000Z",
        "seconds": 7200.0,
        "period_s": 3600.0,
    }
    assert data["scope"] == {"context": "ctx", "namespaces": ["shop"]}
    assert data["threshold"]["max_per_period"] == 3
    assert set(data["definitions"]) >= {"recovery", "pod_replaced", "container_restart", "flagged", "service"}
    assert incidents.load(data) == doc
    with pytest.raises(errors.ReportError, match="schema_version"):
        incidents.load({**data, "schema_version": 2})
    with pytest.raises(errors.ReportError, match="not a hidden-incidents report"):
        incidents.load({**data, "services": "nope"})
    text = incidents.render_text(doc)
    assert "FLAG shop/Deployment/web" in text and "may hide an incident" in text


def test_a_backwards_window_or_bad_settings_are_refused() -> None:
    with pytest.raises(errors.ReportError, match="ends before"):
        incidents.build([], since=T0, until=T0 - 1)
    with pytest.raises(errors.ReportError, match="period"):
        incidents.build([], since=T0, until=T0, period_s=0)
    with pytest.raises(errors.ReportError, match="negative"):
        incidents.build([], since=T0, until=T0, threshold=-1)
    assert "no automated recoveries" in incidents.render_text(incidents.build([], since=T0, until=T0))
