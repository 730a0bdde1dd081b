"""Pure logic of the Kubernetes suspender: JSON pointers, the absent-ancestor rule, knobs, unit names."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import errors
from orchestrator.policies import kubernetes as kp

# -- pointers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "ptr"),
    [
        (
            ("metadata", "annotations", "autoscaling.keda.sh/paused"),
            "/metadata/annotations/autoscaling.keda.sh~1paused",
        ),
        (("a~b", "c/d~1"), "/a~0b/c~1d~01"),
        ((), ""),
        (("",), "/"),
    ],
)
def test_pointer_escaping_round_trips(parts: tuple[str, ...], ptr: str) -> None:
    assert kp.pointer(*parts) == ptr
    assert kp.tokens(ptr) == list(parts)


def test_unescape_order_matters() -> None:
    # "~01" is "~1" literally (RFC 6901: ~1 is replaced before ~0), not "/"
    assert kp.unescape("~01") == "~1"
    with pytest.raises(ValueError, match="not a JSON pointer"):
        kp.tokens("spec/replicas")


def test_lookup_and_dotted() -> None:
    obj = {"spec": {"a": {"b": None}, "n": 0}, "metadata": {"annotations": {"x.io/y": "1"}}}
    assert kp.lookup(obj, "/spec/a/b") == (True, None)
    assert kp.lookup(obj, "/spec/n") == (True, 0)
    assert kp.lookup(obj, "/spec/missing") == (False, None)
    assert kp.lookup(obj, "/spec/n/deeper") == (False, None)
    assert kp.lookup(obj, "/metadata/annotations/x.io~1y") == (True, "1")
    assert kp.dotted("/metadata/annotations/x.io~1y") == "metadata.annotations[x.io/y]"
    assert kp.dotted("/spec/behavior/scaleUp") == "spec.behavior.scaleUp"


def test_missing_ancestor() -> None:
    obj = {"spec": {"behavior": None, "n": 3, "x": {}}}
    assert kp.missing_ancestor(obj, "/spec/n") is None
    assert kp.missing_ancestor(obj, "/spec/x/y/z") == ("/spec/x/y", False)
    assert kp.missing_ancestor(obj, "/status/a") == ("/status", False)
    # a non-object on the way is replaced by an object: it is the field to restore
    assert kp.missing_ancestor(obj, "/spec/n/m") == ("/spec/n", True)
    assert kp.missing_ancestor(obj, "/spec/behavior/scaleUp") == ("/spec/behavior", True)


def test_flatten_merge_patch_to_leaves() -> None:
    patch = {"spec": {"paused": True, "policy": {"mode": "manual", "old": None}, "tags": ["a"], "empty": {}}}
    assert kp.flatten_merge_patch(patch) == [
        ("/spec/paused", True),
        ("/spec/policy/mode", "manual"),
        ("/spec/policy/old", None),
        ("/spec/tags", ["a"]),
        ("/spec/empty", {}),
    ]
    assert kp.flatten_merge_patch({"data": {"a/b": "1"}}) == [("/data/a~1b", "1")]


def test_deep_merge_is_rfc7386() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1, 2]}
    assert kp.deep_merge(base, {"a": {"b": None, "e": 3}, "d": [3]}) == {"a": {"c": 2, "e": 3}, "d": [3]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1, 2]}  # not changed


# -- the absent-ancestor rule ----------------------------------------------------------------------------


def _hpa(behavior: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"minReplicas": 1, "maxReplicas": 5}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"metadata": {"uid": "u1", "name": "web"}, "spec": spec}


def test_hpa_without_behavior_records_behavior_as_absent_once() -> None:
    obj = _hpa(None)
    entries = kp.prior_fields(obj, kp.KNOBS["hpa"].fields(obj, None))
    assert entries == [
        {
            "path": "/spec/behavior",
            "present": False,
            "value": None,
            "suspended": {"scaleUp": {"selectPolicy": "Disabled"}, "scaleDown": {"selectPolicy": "Disabled"}},
        }
    ]
    assert kp.suspend_patch(entries) == {
        "spec": {"behavior": {"scaleUp": {"selectPolicy": "Disabled"}, "scaleDown": {"selectPolicy": "Disabled"}}}
    }


def test_hpa_with_partial_behavior() -> None:
    obj = _hpa({"scaleUp": {"selectPolicy": "Max", "stabilizationWindowSeconds": 0}})
    entries = kp.prior_fields(obj, kp.KNOBS["hpa"].fields(obj, None))
    assert entries == [
        {"path": "/spec/behavior/scaleUp/selectPolicy", "present": True, "value": "Max", "suspended": "Disabled"},
        {
            "path": "/spec/behavior/scaleDown",
            "present": False,
            "value": None,
            "suspended": {"selectPolicy": "Disabled"},
        },
    ]


def test_annotations_and_labels_count_as_present_since_the_claim_creates_them() -> None:
    obj: dict[str, Any] = {"metadata": {"uid": "u"}, "spec": {}}
    entries = kp.prior_fields(obj, kp.KNOBS["keda-scaledobject"].fields(obj, None))
    assert entries == [
        {"path": kp.KEDA_PAUSED, "present": False, "value": None, "suspended": "true"},
    ]


def test_removed_field_under_a_missing_parent_changes_nothing() -> None:
    obj: dict[str, Any] = {"metadata": {}, "spec": {"project": "default"}}
    assert kp.prior_fields(obj, kp.KNOBS["argocd-application"].fields(obj, None)) == []
    obj["spec"]["syncPolicy"] = {"syncOptions": ["A=true"]}
    assert kp.prior_fields(obj, kp.KNOBS["argocd-application"].fields(obj, None)) == [
        {"path": "/spec/syncPolicy/automated", "present": False, "value": None, "suspended": None}
    ]


def test_argocd_knob_variants() -> None:
    plain = {"spec": {"syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
    assert kp.KNOBS["argocd-application"].fields(plain, None) == [kp.Field("/spec/syncPolicy/automated", None)]
    assert kp.prior_fields(plain, kp.KNOBS["argocd-application"].fields(plain, None)) == [
        {
            "path": "/spec/syncPolicy/automated",
            "present": True,
            "value": {"prune": True, "selfHeal": True},
            "suspended": None,
        }
    ]
    assert kp.suspend_patch(kp.prior_fields(plain, kp.KNOBS["argocd-application"].fields(plain, None))) == {
        "spec": {"syncPolicy": {"automated": None}}
    }
    enabled = {"spec": {"syncPolicy": {"automated": {"enabled": True, "prune": True}}}}
    assert kp.KNOBS["argocd-application"].fields(enabled, None) == [
        kp.Field("/spec/syncPolicy/automated/enabled", False)
    ]


def test_generic_knob_flattens_and_merges_siblings_under_one_missing_ancestor() -> None:
    obj: dict[str, Any] = {"metadata": {}, "spec": {"mode": "auto", "policy": {"keep": 1}}}
    patch = {"spec": {"mode": "manual", "window": {"start": "0", "end": "1"}, "policy": {}}}
    fields = kp.KNOBS["generic"].fields(obj, patch)
    assert fields == [
        kp.Field("/spec/mode", "manual"),
        kp.Field("/spec/window/start", "0"),
        kp.Field("/spec/window/end", "1"),
    ]
    assert kp.prior_fields(obj, fields) == [
        {"path": "/spec/mode", "present": True, "value": "auto", "suspended": "manual"},
        {"path": "/spec/window", "present": False, "value": None, "suspended": {"start": "0", "end": "1"}},
    ]
    with pytest.raises(errors.PolicyError, match="merge patch"):
        kp.KNOBS["generic"].fields(obj, None)


def test_mismatches_read_each_leaf_of_a_subtree() -> None:
    entries = [
        {
            "path": "/spec/behavior",
            "present": False,
            "value": None,
            "suspended": {"scaleUp": {"selectPolicy": "Disabled"}},
        },
        {"path": "/spec/syncPolicy/automated", "present": True, "value": {"prune": True}, "suspended": None},
    ]
    ok = {"spec": {"behavior": {"scaleUp": {"selectPolicy": "Disabled", "policies": []}}, "syncPolicy": {}}}
    assert kp.mismatches(ok, entries) == []
    changed = {"spec": {"behavior": {"scaleUp": {"selectPolicy": "Max"}}, "syncPolicy": {"automated": {}}}}
    assert kp.mismatches(changed, entries) == [
        ("/spec/behavior/scaleUp/selectPolicy", "Disabled", (True, "Max")),
        ("/spec/syncPolicy/automated", None, (True, {})),
    ]


def test_restore_ops_add_a_missing_parent_and_remove_only_what_exists() -> None:
    present = {"path": "/spec/behavior/scaleUp/selectPolicy", "present": True, "value": "Max", "suspended": "Disabled"}
    assert kp.restore_ops({"spec": {"behavior": {"scaleUp": {}}}}, present) == [
        {"op": "add", "path": "/spec/behavior/scaleUp/selectPolicy", "value": "Max"}
    ]
    assert kp.restore_ops({"spec": {}}, present) == [
        {"op": "add", "path": "/spec/behavior", "value": {"scaleUp": {"selectPolicy": "Max"}}}
    ]
    absent = {"path": "/spec/behavior", "present": False, "value": None, "suspended": {}}
    assert kp.restore_ops({"spec": {"behavior": {}}}, absent) == [{"op": "remove", "path": "/spec/behavior"}]
    assert kp.restore_ops({"spec": {}}, absent) == []


def test_absence_guard_tests_the_deepest_existing_ancestor() -> None:
    current = {"spec": {"syncPolicy": {"syncOptions": ["A"]}}}
    assert kp.absence_guard(current, "/spec/syncPolicy/automated") == {
        "op": "test",
        "path": "/spec/syncPolicy",
        "value": {"syncOptions": ["A"]},
    }
    assert kp.absence_guard({"spec": {}}, "/spec/syncPolicy/automated") == {"op": "test", "path": "/spec", "value": {}}
    assert kp.absence_guard({}, "/spec") is None


# -- unit names, object types, descriptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        (
            kp.ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", "shop", "web"),
            "p:autoscaling/v2:HorizontalPodAutoscaler:shop/web",
        ),
        (kp.ObjectRef("v1", "ConfigMap", "default", "cfg"), "p:v1:ConfigMap:default/cfg"),
        (kp.ObjectRef("example.dev/v1", "Widget", "", "global"), "p:example.dev/v1:Widget:/global"),
    ],
)
def test_unit_name_round_trips(ref: kp.ObjectRef, name: str) -> None:
    assert kp.unit_name("p", ref) == name
    assert kp.parse_unit(name) == ("p", ref)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "p",
        "p:v1:ConfigMap",
        "p:v1:ConfigMap:noslash",
        "p:v1:ConfigMap:ns/",
        ":v1:ConfigMap:ns/n",
        "p:v1::ns/n",
        "p:a/b/c:Kind:ns/n",
        "p:v1:ConfigMap:ns/n/x",
        "p:v1:ConfigMap:ns/n:extra",
        "sandbox-autorestart",
    ],
)
def test_parse_unit_refuses_anything_else(bad: str) -> None:
    with pytest.raises(ValueError, match=r"unit name|apiVersion"):
        kp.parse_unit(bad)


def test_object_type_defaults_and_overrides() -> None:
    assert kp.object_type("hpa", None, None) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert kp.object_type("flux", None, None) == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    assert kp.object_type("flux", "helm.toolkit.fluxcd.io/v2", "HelmRelease") == (
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
    )
    with pytest.raises(errors.PolicyError, match="apiVersion and resourceKind"):
        kp.object_type("generic", None, None)
    with pytest.raises(errors.PolicyError, match="unknown"):
        kp.object_type("nope", None, None)


def test_every_policy_kind_of_the_definitions_has_a_knob() -> None:
    from orchestrator.definitions import models

    assert set(models.KUBE_POLICY_KINDS) == set(kp.KNOBS)


def test_descriptions() -> None:
    hpa_prior = {"fields": [{"path": "/spec/behavior", "present": False, "value": None, "suspended": {}}]}
    assert kp.describe_value("hpa", hpa_prior) == "scaleUp/scaleDown selectPolicy unset (Max)"
    hpa_suspended = {
        "fields": [
            {
                "path": "/spec/behavior",
                "present": True,
                "value": {"scaleUp": {"selectPolicy": "Disabled"}, "scaleDown": {"selectPolicy": "Disabled"}},
            }
        ]
    }
    assert kp.describe_value("hpa", hpa_suspended) == "scaleUp/scaleDown selectPolicy Disabled"
    cron = {"fields": [{"path": "/spec/suspend", "present": True, "value": False, "suspended": True}]}
    assert kp.describe_value("cronjob", cron) == "spec.suspend=false"
    assert kp.describe_value("deployment", {"fields": [{"path": "/spec/replicas", "present": True, "value": 3}]}) == (
        "spec.replicas=3"
    )
    keda = {"fields": [{"path": kp.KEDA_PAUSED, "present": False, "value": None, "suspended": "true"}]}
    assert kp.describe_value("keda-scaledobject", keda) == "metadata.annotations[autoscaling.keda.sh/paused] unset"
    assert kp.describe_value("generic", {"fields": []}) == "nothing to change"
