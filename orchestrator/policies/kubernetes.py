"""Remediation automation on Kubernetes as suspendable policies: one ``KubeSuspender`` per object.

Claim: ONE GET, then ONE JSON merge patch carrying the resourceVersion read (a concurrent change gets 409: re-read,
retry), the marker annotation ``drill.dev/suspension`` (run id, unit, policy kind, the original of exactly the
touched fields, deadline, uid), the label ``drill.dev/suspended: "true"`` and the suspended values. The prior::

    {"uid": "...", "fields": [{"path": "/spec/suspend", "present": true, "value": false, "suspended": true}]}

``path`` is a JSON pointer. A field whose parent is absent is recorded at its shallowest missing ancestor
(``present: false``, ``suspended`` is then the subtree written there), so restoring removes the whole subtree the
API server filled with defaults. ``suspended: null`` means the field is removed (a ``null`` in a merge patch).

Restore: ONE JSON patch that ``test``s our marker and each field's suspended value, then puts the originals back
(``add``/``remove``) and removes the marker and label. No resourceVersion precondition: fields others changed
meanwhile survive; a changed touched field fails its ``test`` and nothing is written
(``errors.RestoreConflictError``, unless ``force``).

Unit names: ``<policy>:<apiVersion>:<Kind>:<namespace>/<name>``; a cluster-scoped object has an empty namespace
(``web:example.dev/v1:Widget:/name``).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator import errors
from orchestrator.adapters import kube
from orchestrator.policies import base

LABEL_KEY = "drill.dev/suspended"
MARK_LABEL = f"{LABEL_KEY}=true"
"""The label selector of every object a drill suspended (the marker annotation says which run)."""
CLAIM_ATTEMPTS = 5
RESTORE_ATTEMPTS = 5
T = TypeVar("T")
SUSPEND_OUTAGE_S = 60.0
"""How long a claim, a suspend or a read-back waits out an API server that does not answer (then the run aborts
and restores, which waits longer: ``unreachable_timeout_s``)."""
_FRESH_S = 1.0
"""How long an object the server just returned stands for its current state (see ``KubeSuspender._fresh``)."""
_CLAIMED_S = 60.0
"""How long the claim's own PATCH response stands for the object the suspend step checks. The step asks whether
the write landed the suspended values (no default or webhook changed them), which that response says; the
read-back that follows always asks the server. In a 2,000-object batch the claims of one batch end a second or
more before their suspend steps start: a 1 s window re-read most objects."""
_BACKOFF_START_S = 0.2
_BACKOFF_MAX_S = 5.0


# -- JSON pointers -------------------------------------------------------------------------------------


def escape(token: str) -> str:
    """One reference token of a JSON pointer (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer(*tokens: str) -> str:
    return "".join("/" + escape(t) for t in tokens)


def tokens(ptr: str) -> list[str]:
    """The tokens of a pointer; ``""`` is the whole document. ValueError when it does not start with ``/``."""
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise ValueError(f"{ptr!r} is not a JSON pointer")
    return [unescape(t) for t in ptr[1:].split("/")]


def dotted(ptr: str) -> str:
    """A pointer for people: ``spec.behavior.scaleUp``; a key with ``.`` or ``/`` in brackets."""
    out = ""
    for tok in tokens(ptr):
        out += f"[{tok}]" if ("." in tok or "/" in tok) else (f".{tok}" if out else tok)
    return out or "(the whole object)"


def lookup(obj: Any, ptr: str) -> tuple[bool, Any]:
    """(present, value) at ``ptr``; objects only (no list indices)."""
    cur = obj
    for tok in tokens(ptr):
        if not isinstance(cur, dict) or tok not in cur:
            return False, None
        cur = cur[tok]
    return True, cur


def missing_ancestor(obj: Any, ptr: str) -> tuple[str, bool] | None:
    """Where writing ``ptr`` would first create or replace something: None when ``ptr`` exists; else
    ``(prefix, present)``: the shallowest missing prefix (``present`` False), or the deepest present prefix that is
    not an object and would be replaced by one (``present`` True)."""
    toks = tokens(ptr)
    cur = obj
    for i, tok in enumerate(toks):
        if not isinstance(cur, dict):
            return pointer(*toks[:i]), True
        if tok not in cur:
            return pointer(*toks[: i + 1]), False
        cur = cur[tok]
    return None


def nest(ptr: str, value: Any) -> Any:
    """``value`` wrapped in objects so that it sits at ``ptr`` relative to where it is put."""
    for tok in reversed(tokens(ptr)):
        value = {tok: value}
    return value


def relative(ptr: str, prefix: str) -> str:
    """``ptr`` below ``prefix`` (``/spec/a/b`` below ``/spec`` is ``/a/b``)."""
    if not (ptr == prefix or ptr.startswith(prefix + "/")):
        raise ValueError(f"{ptr} is not below {prefix}")
    return ptr[len(prefix) :]


def deep_merge(into: Any, patch: Any) -> Any:
    """RFC 7386 merge of ``patch`` into ``into`` (a copy; ``None`` removes)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(into) if isinstance(into, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = deep_merge(out.get(key), value)
    return out


def set_at(doc: dict[str, Any], ptr: str, value: Any) -> None:
    """Put ``value`` at ``ptr`` in ``doc`` (a merge patch being built), creating objects on the way."""
    toks = tokens(ptr)
    if not toks:
        raise ValueError("cannot set the whole document")
    cur = doc
    for tok in toks[:-1]:
        nxt = cur.get(tok)
        if not isinstance(nxt, dict):
            nxt = cur[tok] = {}
        cur = nxt
    last = toks[-1]
    if isinstance(value, dict) and isinstance(cur.get(last), dict):
        cur[last] = deep_merge(cur[last], value)
    else:
        cur[last] = copy.deepcopy(value)


def flatten_merge_patch(patch: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The leaf fields a JSON merge patch sets: ``(pointer, value)``, ``None`` = removed; an empty object is a leaf."""
    leaves: list[tuple[str, Any]] = []
    for key, value in patch.items():
        ptr = prefix + "/" + escape(str(key))
        if isinstance(value, dict) and value:
            leaves.extend(flatten_merge_patch(value, ptr))
        else:
            leaves.append((ptr, value))
    return leaves


def leaves_of(ptr: str, value: Any) -> list[tuple[str, Any]]:
    """The leaves a suspended value written at ``ptr`` must show (a dict merges: each of its leaves)."""
    if isinstance(value, dict) and value:
        return flatten_merge_patch(value, ptr)
    return [(ptr, value)]


# -- knobs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One touched field: a JSON pointer and its suspended value (``None``: removed)."""

    path: str
    suspended: Any


FieldsOf = Callable[[dict[str, Any], dict[str, Any] | None], list[Field]]


@dataclass(frozen=True)
class Knob:
    """How one policy kind suspends its object: the default apiVersion/kind and the fields it touches."""

    api_version: str | None
    kind: str | None
    fields: FieldsOf
    what: str


def _fixed(*fields: Field) -> FieldsOf:
    def of(obj: dict[str, Any], patch: dict[str, Any] | None) -> list[Field]:
        return list(fields)

    return of


def _argocd(obj: dict[str, Any], patch: dict[str, Any] | None) -> list[Field]:
    present, automated = lookup(obj, "/spec/syncPolicy/automated")
    if present and isinstance(automated, dict) and "enabled" in automated:
        return [Field("/spec/syncPolicy/automated/enabled", False)]
    return [Field("/spec/syncPolicy/automated", None)]


def _generic(obj: dict[str, Any], patch: dict[str, Any] | None) -> list[Field]:
    if not patch:
        raise errors.PolicyError("a generic policy needs the JSON merge patch that suspends it (patch:)")
    fields: list[Field] = []
    for ptr, value in flatten_merge_patch(patch):
        if value == {}:
            present, current = lookup(obj, ptr)
            if present and isinstance(current, dict):
                continue  # merging {} into an object changes nothing
        fields.append(Field(ptr, value))
    return fields


KEDA_PAUSED = pointer("metadata", "annotations", "autoscaling.keda.sh/paused")
_HPA_UP = "/spec/behavior/scaleUp/selectPolicy"
_HPA_DOWN = "/spec/behavior/scaleDown/selectPolicy"

KNOBS: dict[str, Knob] = {
    "hpa": Knob(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        _fixed(Field(_HPA_UP, "Disabled"), Field(_HPA_DOWN, "Disabled")),
        "scaling disabled both ways (replicas stay where they are)",
    ),
    "deployment": Knob("apps/v1", "Deployment", _fixed(Field("/spec/replicas", 0)), "scaled to 0"),
    "statefulset": Knob("apps/v1", "StatefulSet", _fixed(Field("/spec/replicas", 0)), "scaled to 0"),
    "cronjob": Knob("batch/v1", "CronJob", _fixed(Field("/spec/suspend", True)), "suspended"),
    "keda-scaledobject": Knob(
        "keda.sh/v1alpha1", "ScaledObject", _fixed(Field(KEDA_PAUSED, "true")), "paused (autoscaling.keda.sh/paused)"
    ),
    "argocd-application": Knob("argoproj.io/v1alpha1", "Application", _argocd, "auto-sync off"),
    "flux": Knob("kustomize.toolkit.fluxcd.io/v1", "Kustomization", _fixed(Field("/spec/suspend", True)), "suspended"),
    "vpa": Knob(
        "autoscaling.k8s.io/v1",
        "VerticalPodAutoscaler",
        _fixed(Field("/spec/updatePolicy/updateMode", "Off")),
        "updateMode Off",
    ),
    "generic": Knob(None, None, _generic, "the declared merge patch"),
}


def object_type(policy_kind: str, api_version: str | None, resource_kind: str | None) -> tuple[str, str]:
    """The apiVersion and kind a policy selects: the ones given (flux, generic), else the knob's default."""
    knob = KNOBS.get(policy_kind)
    if knob is None:
        raise errors.PolicyError(f"unknown Kubernetes policy kind {policy_kind!r}; one of {', '.join(KNOBS)}")
    chosen = (api_version or knob.api_version, resource_kind or knob.kind)
    if not chosen[0] or not chosen[1]:
        raise errors.PolicyError(f"a {policy_kind} policy needs apiVersion and resourceKind of its objects")
    return str(chosen[0]), str(chosen[1])


def prior_fields(obj: dict[str, Any], fields: list[Field]) -> list[dict[str, Any]]:
    """The prior of ``fields`` on ``obj``: one entry per field, or per shallowest missing ancestor.

    The claim itself creates ``metadata.annotations`` and ``metadata.labels`` (marker and label), so they count
    as present. A removed field under a missing parent changes nothing and is left out.
    """
    work = dict(obj)
    meta = dict(work.get("metadata") or {})
    meta["annotations"] = dict(meta.get("annotations") or {})
    meta["labels"] = dict(meta.get("labels") or {})
    work["metadata"] = meta
    entries: dict[str, dict[str, Any]] = {}
    for field in fields:
        where = missing_ancestor(work, field.path)
        if field.suspended is None:
            if where is not None and where[0] != field.path:
                continue
            present, value = lookup(work, field.path)
            entries[field.path] = {"path": field.path, "present": present, "value": value, "suspended": None}
            continue
        at = field.path if where is None else where[0]
        below = relative(field.path, at)
        suspended = nest(below, field.suspended) if below else field.suspended
        entry = entries.get(at)
        if entry is None:
            present, value = lookup(work, at)
            entries[at] = {
                "path": at,
                "present": present,
                "value": copy.deepcopy(value),
                "suspended": copy.deepcopy(suspended),
            }
        else:
            entry["suspended"] = deep_merge(entry["suspended"], suspended)
    return list(entries.values())


def mismatches(obj: dict[str, Any], entries: list[dict[str, Any]]) -> list[tuple[str, Any, tuple[bool, Any]]]:
    """Each leaf of ``entries`` that does not hold its suspended value: ``(pointer, suspended, (present, now))``."""
    out: list[tuple[str, Any, tuple[bool, Any]]] = []
    for entry in entries:
        if entry.get("suspended") is None:
            now = lookup(obj, entry["path"])
            if now[0]:
                out.append((entry["path"], None, now))
            continue
        for ptr, value in leaves_of(entry["path"], entry["suspended"]):
            now = lookup(obj, ptr)
            if now != (True, value):
                out.append((ptr, value, now))
    return out


def suspend_patch(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The merge patch that writes the suspended values of ``entries`` (``None``: removes)."""
    patch: dict[str, Any] = {}
    for entry in entries:
        set_at(patch, entry["path"], entry.get("suspended"))
    return patch


def restore_ops(current: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch operations that put one entry's original back on ``current``."""
    path = entry["path"]
    if not entry.get("present"):
        return [{"op": "remove", "path": path}] if lookup(current, path)[0] else []
    where = missing_ancestor(current, path)
    if where is None or where[0] == path:
        return [{"op": "add", "path": path, "value": entry.get("value")}]
    at = where[0]  # the parent is gone (or not an object): put it back with the value inside
    return [{"op": "add", "path": at, "value": nest(relative(path, at), entry.get("value"))}]


def absence_guard(current: dict[str, Any], path: str) -> dict[str, Any] | None:
    """A ``test`` that ``path`` is still absent: its deepest existing ancestor still equals what was read
    (a JSON patch cannot test for absence directly). None when only the whole object would do."""
    toks = tokens(path)
    for i in range(len(toks) - 1, 0, -1):
        ancestor = pointer(*toks[:i])
        present, value = lookup(current, ancestor)
        if present:
            return {"op": "test", "path": ancestor, "value": value}
    return None


# -- unit names ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRef:
    """One object; ``namespace`` is ``""`` for a cluster-scoped one."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def unit_name(policy: str, ref: ObjectRef) -> str:
    """``<policy>:<apiVersion>:<Kind>:<namespace>/<name>`` (``:/name`` for a cluster-scoped object)."""
    return f"{policy}:{ref.api_version}:{ref.kind}:{ref.namespace}/{ref.name}"


def parse_unit(name: str) -> tuple[str, ObjectRef]:
    """``(policy, ref)`` of a unit name; ValueError on anything else."""
    parts = name.split(":")
    if len(parts) != 4:
        raise ValueError(f"{name!r} is not a unit name <policy>:<apiVersion>:<Kind>:<namespace>/<name>")
    policy, api_version, kind, rest = parts
    namespace, slash, obj_name = rest.partition("/")
    if not (policy and api_version and kind and slash and obj_name) or "/" in obj_name or "/" in namespace:
        raise ValueError(f"{name!r} is not a unit name <policy>:<apiVersion>:<Kind>:<namespace>/<name>")
    if api_version.count("/") > 1 or api_version.startswith("/") or api_version.endswith("/"):
        raise ValueError(f"{name!r}: {api_version!r} is not an apiVersion")
    return policy, ObjectRef(api_version, kind, namespace, obj_name)


# -- describing values ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _sparse(value: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    entries = [e for e in value.get("fields") or [] if isinstance(e, dict) and isinstance(e.get("path"), str)]
    doc: dict[str, Any] = {}
    for entry in entries:
        if entry.get("present") and entry["path"]:
            set_at(doc, entry["path"], entry.get("value"))
    return doc, entries


def describe_value(policy_kind: str, value: dict[str, Any]) -> str:
    """A value (a prior, a snapshot, a suspended value) in words."""
    doc, entries = _sparse(value)
    if policy_kind == "hpa":
        up, down = lookup(doc, _HPA_UP), lookup(doc, _HPA_DOWN)
        if up == down:
            return f"scaleUp/scaleDown selectPolicy {up[1] if up[0] else 'unset (Max)'}"
        up_text = up[1] if up[0] else "unset"
        down_text = down[1] if down[0] else "unset"
        return f"scaleUp selectPolicy {up_text}, scaleDown selectPolicy {down_text}"
    parts = []
    for entry in entries:
        if not entry.get("present"):
            parts.append(f"{dotted(entry['path'])} unset")
            continue
        suspended = entry.get("suspended")
        if isinstance(suspended, dict) and suspended and isinstance(entry.get("value"), dict):
            for ptr, _ in leaves_of(entry["path"], suspended):
                present, now = lookup(doc, ptr)
                parts.append(f"{dotted(ptr)}={_text(now)}" if present else f"{dotted(ptr)} unset")
        else:
            parts.append(f"{dotted(entry['path'])}={_text(entry.get('value'))}")
    return ", ".join(parts) or "nothing to change"


# -- the suspender -------------------------------------------------------------------------------------


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _marker_text(obj: dict[str, Any]) -> str | None:
    text = (_meta(obj).get("annotations") or {}).get(base.MARKER_KEY)
    return str(text) if text is not None else None


_MARKER_PTR = pointer("metadata", "annotations", base.MARKER_KEY)
_LABEL_PTR = pointer("metadata", "labels", LABEL_KEY)


class KubeSuspender:
    """One policy on one Kubernetes object (see the module docstring)."""

    def __init__(
        self,
        api: kube.KubeApi,
        *,
        policy_kind: str,
        unit: str,
        ref: ObjectRef,
        patch: dict[str, Any] | None = None,
        unreachable_timeout_s: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        listed: dict[str, Any] | None = None,
    ) -> None:
        if policy_kind not in KNOBS:
            raise errors.PolicyError(
                f"{unit}: unknown Kubernetes policy kind {policy_kind!r}; one of {', '.join(KNOBS)}"
            )
        # A generic suspender rebuilt for a restore (from the journal or a marker) has no patch: the prior it
        # restores names the touched fields and their suspended values, which is all a restore needs.
        self.kind = policy_kind
        self.name = unit
        self.ref = ref
        self._api = api
        self._knob = KNOBS[policy_kind]
        self._patch = copy.deepcopy(patch) if patch else None
        self._unreachable_timeout_s = unreachable_timeout_s
        self._sleep = sleep
        self._prior: dict[str, Any] | None = None
        self._seen: tuple[float, dict[str, Any]] | None = None  # (good until, the object the server last returned)
        # The object as the policy's selection listed it: where the dry run and the first claim start, when it
        # carries no marker (a marker seen there may be gone since: that is asked again). Both writes are
        # guarded by its resourceVersion, so a stale copy costs a 409 and a fresh read, never a wrong write;
        # a fresh copy saves a GET per object each time (2,000 of a 6,000-request suspension).
        self._listed = listed if listed is not None and _marker_text(listed) is None else None
        # The object as this process last had it from the server (a GET, the claim's response), any age: where
        # the engine's own restore starts when it carries this run's marker. The restore's JSON patch tests the
        # marker, the uid and every suspended value, so a copy that is no longer true gets a 422 and a fresh
        # read, never a wrong write; a true one saves a GET per object.
        self._last: dict[str, Any] | None = None

    # -- reading -------------------------------------------------------------------------------------

    def _get(self) -> dict[str, Any] | None:
        r = self.ref
        obj = self._api.get(r.api_version, r.kind, r.namespace, r.name)
        self._seen = (time.monotonic() + _FRESH_S, obj) if obj is not None else None
        self._last = obj
        return obj

    def _fresh(self) -> dict[str, Any] | None:
        """The object the server returned a moment ago (a GET, or the claim's own PATCH response), once; else None.

        Describing what a read-back saw, or checking right after the claim, needs no second request; a
        2,000-object drill spends its time in round trips."""
        seen, self._seen = self._seen, None  # used once: the next question asks the server again
        if seen is not None and time.monotonic() < seen[0]:
            return seen[1]
        return None

    def _read(self) -> dict[str, Any]:
        obj = self._get()
        if obj is None:
            raise errors.PolicyError(f"{self.name}: {self.ref} not found")
        return obj

    def _prior_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.kind == "generic" and self._patch is None:
            fields = self._known_fields(obj)
        else:
            fields = self._knob.fields(obj, self._patch)
        return {"uid": str(_meta(obj).get("uid") or ""), "fields": prior_fields(obj, fields)}

    def _known_fields(self, obj: dict[str, Any]) -> list[Field]:
        """The touched fields of a generic suspension without its patch: from the prior or the marker."""
        prior = self._prior
        if prior is None:
            text = _marker_text(obj)
            marker = base.Marker.from_json(text) if text else None
            prior = marker.original if marker is not None else None
        if not prior or not prior.get("fields"):
            raise errors.PolicyError(
                f"{self.name}: a generic policy needs the JSON merge patch that suspends it (patch:)"
            )
        return [Field(str(e["path"]), e.get("suspended")) for e in prior["fields"]]

    def _foreign(self, marker: base.Marker | None) -> errors.MarkerConflictError:
        holder = marker.run_id if marker is not None else ""
        return errors.MarkerConflictError(base.conflict_message(self.name, str(self.ref), holder))

    def _patch_object(self, body: dict[str, Any] | list[dict[str, Any]], *, json_patch: bool) -> dict[str, Any]:
        r = self.ref
        return self._api.patch(
            r.api_version, r.kind, r.namespace, r.name, body, patch_type="json" if json_patch else "merge"
        )

    def snapshot(self) -> dict[str, Any]:
        """The touched fields as they are now (the prior a claim would record), with the object's uid."""
        fresh = self._fresh()
        if fresh is not None:
            return self._prior_of(fresh)
        return self._prior_of(self._read())

    def describe(self, value: dict[str, Any]) -> str:
        return describe_value(self.kind, value)

    def suspended_value(self) -> dict[str, Any]:
        prior = self._prior
        if prior is None:
            marker = self.marker()
            prior = marker.original if marker is not None and marker.original.get("fields") else self.snapshot()
        return {
            "fields": [
                {
                    "path": e["path"],
                    "present": e.get("suspended") is not None,
                    "value": e.get("suspended"),
                    "suspended": e.get("suspended"),
                }
                for e in prior.get("fields") or []
            ]
        }

    def marker(self) -> base.Marker | None:
        if self._listed is not None:
            # Not claimed yet, and listed without a marker a moment ago (preflight asks every selected object
            # whether another run holds it). One placed since is found by the claim, which refuses it.
            return None
        obj = self._get()
        text = _marker_text(obj) if obj is not None else None
        return base.Marker.from_json(text) if text else None

    # -- claim and suspend ---------------------------------------------------------------------------

    def _claim_body(self, obj: dict[str, Any], *, run_id: str, deadline_at: float) -> tuple[dict[str, Any], Any]:
        """The prior read from ``obj`` and the one merge patch that claims and suspends it."""
        prior = self._prior_of(obj)
        body = suspend_patch(prior["fields"])
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = _meta(obj).get("resourceVersion")
        meta.setdefault("annotations", {})[base.MARKER_KEY] = base.Marker(
            run_id=run_id,
            policy=self.name,
            kind=self.kind,
            original=prior,
            deadline_at=deadline_at,
            instance=prior["uid"],
        ).to_json()
        meta.setdefault("labels", {})[LABEL_KEY] = "true"
        return prior, body

    def dry_run(self) -> None:
        """Send the claim's patch with ``dryRun=All``: schema validation and admission webhooks answer, nothing is
        written. ``errors.PolicyError`` when refused (``MarkerConflictError`` when a marker is there already)."""
        obj = self._listed if self._listed is not None else self._read()
        text = _marker_text(obj)
        if text is not None:
            raise self._foreign(base.Marker.from_json(text))
        _, body = self._claim_body(obj, run_id="dry-run", deadline_at=0.0)
        r = self.ref
        try:
            self._api.patch(r.api_version, r.kind, r.namespace, r.name, body, patch_type="merge", dry_run=True)
        except kube.KubeConflict:
            return  # changed since the GET: not a refusal of the change itself
        except kube.KubeInvalid as exc:
            raise errors.PolicyError(f"{self.name}: the API server refuses to suspend {self.ref}: {exc}") from exc

    def claim(self, marker: base.Marker) -> dict[str, Any]:
        # Retried through a short outage: a claim that landed before the connection broke is found as ours.
        return self._through_outages(
            lambda: self._claim_once(marker), what="claim", run_id=marker.run_id, timeout_s=SUSPEND_OUTAGE_S
        )

    def _claim_once(self, marker: base.Marker) -> dict[str, Any]:
        for _ in range(CLAIM_ATTEMPTS):
            listed, self._listed = self._listed, None  # once: after a 409 (or an outage), ask the server
            obj = listed if listed is not None else self._read()
            uid = str(_meta(obj).get("uid") or "")
            text = _marker_text(obj)
            if text is not None:
                held = base.Marker.from_json(text)
                if held is None or held.run_id != marker.run_id:
                    raise self._foreign(held)
                if held.instance and held.instance != uid:
                    raise errors.PolicyError(
                        f"{self.name}: {self.ref} (uid {uid}) carries run {marker.run_id}'s marker claimed on "
                        f"uid {held.instance}: a copy of another object's marker; remove it by hand"
                    )
                self._prior = dict(held.original)
                return dict(held.original)
            prior, body = self._claim_body(obj, run_id=marker.run_id, deadline_at=marker.deadline_at)
            try:
                claimed = self._patch_object(body, json_patch=False)
                self._seen, self._last = (time.monotonic() + _CLAIMED_S, claimed), claimed
            except kube.KubeConflict:
                continue  # changed since the GET: read again
            except kube.KubeNotFound as exc:
                raise errors.PolicyError(f"{self.name}: {self.ref} not found (deleted while claiming)") from exc
            except kube.KubeInvalid as exc:
                raise errors.PolicyError(f"{self.name}: the API server refused to suspend {self.ref}: {exc}") from exc
            self._prior = prior
            return prior
        raise errors.PolicyError(
            f"{self.name}: {self.ref} changed under every one of {CLAIM_ATTEMPTS} claims; try again"
        )

    def _ours(self, obj: dict[str, Any], run_id: str, *, action: str) -> base.Marker:
        """Our marker on ``obj``, else the protocol's error."""
        text = _marker_text(obj)
        if text is None:
            raise errors.PolicyError(
                f"{self.name}: {self.ref} carries no marker of run {run_id}: claim it before {action}"
            )
        held = base.Marker.from_json(text)
        if held is None or held.run_id != run_id:
            raise self._foreign(held)
        uid = str(_meta(obj).get("uid") or "")
        if held.instance and held.instance != uid:
            raise errors.ObjectGoneError(
                f"{self.name}: {self.ref} was replaced (uid {held.instance} -> {uid}); not touched"
            )
        return held

    def suspend(self, *, run_id: str) -> None:
        """The values went with the claim; put them back (guarded by resourceVersion) if someone changed them."""
        self._through_outages(
            lambda: self._suspend_once(run_id), what="suspend", run_id=run_id, timeout_s=SUSPEND_OUTAGE_S
        )

    def _suspend_once(self, run_id: str) -> None:
        for attempt in range(CLAIM_ATTEMPTS):
            fresh = self._fresh() if attempt == 0 else None
            obj = fresh if fresh is not None else self._read()
            held = self._ours(obj, run_id, action="suspending")
            entries = list(held.original.get("fields") or [])
            if not mismatches(obj, entries):
                return
            body = suspend_patch(entries)
            body.setdefault("metadata", {})["resourceVersion"] = _meta(obj).get("resourceVersion")
            try:
                self._patch_object(body, json_patch=False)
            except kube.KubeConflict:
                continue
            except kube.KubeInvalid as exc:
                raise errors.PolicyError(f"{self.name}: the API server refused to suspend {self.ref}: {exc}") from exc
            still = mismatches(self._read(), entries)
            if still:
                raise errors.PolicyError(
                    f"{self.name}: {self.ref} does not keep its suspended values ("
                    + "; ".join(self._mismatch_text(m) for m in still)
                    + "): a schema default or a controller puts them back"
                )
            return
        raise errors.PolicyError(f"{self.name}: {self.ref} changed under every one of {CLAIM_ATTEMPTS} writes")

    def verify_suspended(self, *, run_id: str) -> bool:
        return self._through_outages(
            lambda: self._verify_suspended_once(run_id), what="read back", run_id=run_id, timeout_s=SUSPEND_OUTAGE_S
        )

    def _verify_suspended_once(self, run_id: str) -> bool:
        obj = self._get()
        if obj is None:
            return False
        text = _marker_text(obj)
        held = base.Marker.from_json(text) if text else None
        if held is None or held.run_id != run_id:
            return False
        if held.instance and held.instance != str(_meta(obj).get("uid") or ""):
            return False
        return not mismatches(obj, list(held.original.get("fields") or []))

    # -- restore -------------------------------------------------------------------------------------

    @staticmethod
    def _mismatch_text(m: tuple[str, Any, tuple[bool, Any]]) -> str:
        ptr, expected, (present, now) = m
        want = "was removed" if expected is None else f"was set to {_text(expected)}"
        have = f"now holds {_text(now)}" if present else "is now unset"
        return f"{dotted(ptr)} {want} and {have}"

    def restore(self, original: dict[str, Any], *, run_id: str, force: bool = False) -> None:
        if self._prior is None and original.get("fields"):
            self._prior = original
        self._through_outages(
            lambda: self._restore_once(original, run_id=run_id, force=force),
            what="restore",
            run_id=run_id,
            timeout_s=self._unreachable_timeout_s,
        )

    def _through_outages(self, step: Callable[[], T], *, what: str, run_id: str, timeout_s: float) -> T:
        """``step``, retried with backoff while the API server does not answer, up to ``timeout_s``.

        A 403 right after an outage is retried too: a restarted API server refuses every request until its
        authorization cache has synced (a tenth of a second here); a 403 without an outage before it is final.
        """
        deadline = time.monotonic() + timeout_s
        delay = _BACKOFF_START_S
        outage = False
        while True:
            try:
                return step()
            except (kube.KubeUnavailable, kube.KubeForbidden) as exc:
                if isinstance(exc, kube.KubeForbidden) and not outage:
                    raise
                outage = True
                if time.monotonic() + delay > deadline:
                    raise errors.TargetError(
                        f"{self.name}: cannot {what} {self.ref}: the API server did not answer for "
                        f"{timeout_s:g}s ({exc}); the marker (if any) stays on the object, "
                        f"`drill restore {run_id}` tries again"
                    ) from exc
                self._sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)

    def _known_claimed(self, run_id: str) -> dict[str, Any] | None:
        """The last copy of the object (once), when it carries ``run_id``'s marker; else None."""
        known, self._last = self._last, None
        if known is None:
            return None
        text = _marker_text(known)
        held = base.Marker.from_json(text) if text else None
        return known if held is not None and held.run_id == run_id else None

    def _restore_once(self, original: dict[str, Any], *, run_id: str, force: bool) -> None:
        last = ""
        for attempt in range(RESTORE_ATTEMPTS):
            known = self._known_claimed(run_id) if attempt == 0 and not force else None
            obj = known if known is not None else self._get()
            if obj is None:
                raise errors.ObjectGoneError(f"{self.name}: {self.ref} was deleted during the drill; not recreated")
            uid = str(_meta(obj).get("uid") or "")
            text = _marker_text(obj)
            held = base.Marker.from_json(text) if text else None
            claimed_uid = str(original.get("uid") or (held.instance if held is not None else ""))
            if claimed_uid and uid != claimed_uid:
                raise errors.ObjectGoneError(
                    f"{self.name}: {self.ref} was replaced during the drill (uid {claimed_uid} -> {uid}); not touched"
                )
            if text is None:
                return  # no marker: restored already (or never claimed)
            if held is None or held.run_id != run_id:
                raise self._foreign(held)
            recorded = original["fields"] if "fields" in original else held.original.get("fields")
            entries = list(recorded or [])
            changed = mismatches(obj, entries)
            if changed and not force:
                raise self._conflict(run_id, changed, entries)
            ops: list[dict[str, Any]] = [{"op": "test", "path": _MARKER_PTR, "value": text}]
            if uid:
                ops.append({"op": "test", "path": "/metadata/uid", "value": uid})
            if not force:
                for entry in entries:
                    if entry.get("suspended") is None:
                        guard = absence_guard(obj, entry["path"])
                        if guard is not None:
                            ops.append(guard)
                    else:
                        ops.extend(
                            {"op": "test", "path": ptr, "value": value}
                            for ptr, value in leaves_of(entry["path"], entry["suspended"])
                        )
            for entry in entries:
                ops.extend(restore_ops(obj, entry))
            ops.append({"op": "remove", "path": _MARKER_PTR})
            if lookup(obj, _LABEL_PTR)[0]:
                ops.append({"op": "remove", "path": _LABEL_PTR})
            try:
                self._patch_object(ops, json_patch=True)
                return
            except (kube.KubeInvalid, kube.KubeConflict) as exc:
                last = str(exc)  # a failed test (or a race on the label): read again and decide
            except kube.KubeNotFound as exc:
                raise errors.ObjectGoneError(
                    f"{self.name}: {self.ref} was deleted during the drill; not recreated"
                ) from exc
        raise errors.PolicyError(
            f"{self.name}: {self.ref} kept changing under {RESTORE_ATTEMPTS} restores ({last}); "
            f"the marker stays, `drill restore {run_id}` tries again"
        )

    def _conflict(
        self, run_id: str, changed: list[tuple[str, Any, tuple[bool, Any]]], entries: list[dict[str, Any]]
    ) -> errors.RestoreConflictError:
        what = "; ".join(self._mismatch_text(m) for m in changed)
        return errors.RestoreConflictError(
            f"{self.name}: {self.ref}: someone changed it during the drill: {what}. Nothing was restored and the "
            f"marker stays; `drill restore {run_id} --force` overwrites it with the original "
            f"({self.describe({'fields': entries})})"
        )

    def verify_restored(self, original: dict[str, Any], *, run_id: str) -> bool:
        if self._prior is None and original.get("fields"):
            self._prior = original
        obj = self._get()
        if obj is None:
            raise errors.ObjectGoneError(f"{self.name}: {self.ref} was deleted during the drill; not recreated")
        uid = str(_meta(obj).get("uid") or "")
        claimed = str(original.get("uid") or "")
        if claimed and uid != claimed:
            raise errors.ObjectGoneError(
                f"{self.name}: {self.ref} is uid {uid}, not uid {claimed} that run {run_id} claimed; "
                "refusing to verify a different object"
            )
        text = _marker_text(obj)
        held = base.Marker.from_json(text) if text else None
        if held is not None and held.run_id == run_id:
            return False
        if text is None and lookup(obj, _LABEL_PTR)[0]:
            return False
        for entry in original.get("fields") or []:
            now = lookup(obj, entry["path"])
            if now != ((True, entry.get("value")) if entry.get("present") else (False, None)):
                return False
        return True
