"""The typed model of a drill file (``kind: Drill``); ``drill schema`` prints its JSON Schema.

Durations are written as people write them (``90s``, ``5m``, ``1h30m``) and stored as seconds.
Every model forbids unknown fields, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from orchestrator import durations, redaction
from orchestrator.definitions import cron, limits

API_VERSION = "drill.dev/v1alpha1"
KUBE_POLICY_KINDS = (
    "hpa",
    "deployment",
    "statefulset",
    "cronjob",
    "keda-scaledobject",
    "argocd-application",
    "flux",
    "vpa",
    "generic",
)
POLICY_KINDS = ("sandbox-autorestart", *KUBE_POLICY_KINDS)
TARGET_KINDS = ("sandbox", "kubernetes")
#: Namespaces a drill never touches unless its target lists them under ``allowProtected``.
PROTECTED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")

#: Longest any single timing or run may be: a drill is a working-day exercise.
MAX_DURATION_S = 24 * 3600.0
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PERSON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_API_VERSION = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")

_L = limits.LIMITS
#: Lengths are checked before any pattern, so a 10,000-character name costs nothing and says "too long".
Name = Annotated[str, Field(max_length=_L.name_chars)]
Text = Annotated[str, Field(max_length=_L.text_chars)]
PathText = Annotated[str, Field(max_length=_L.path_chars)]


def _seconds(value: object) -> float:
    seconds = durations.parse_duration(value)
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than 24h, the longest a drill may run")
    return seconds


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be longer than zero, e.g. 30s")
    return value


_DURATION_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {
                "type": "string",
                "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$",
                "examples": ["90s", "5m", "1h30m"],
            },
            {"type": "number", "minimum": 0, "description": "seconds"},
        ]
    }
)
Duration = Annotated[float, BeforeValidator(_seconds), _DURATION_SCHEMA]
PositiveDuration = Annotated[float, BeforeValidator(_seconds), AfterValidator(_positive), _DURATION_SCHEMA]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=True,
        defer_build=True,  # validators are built on first use: a command pays only for the models it reads
    )


class Mode(StrEnum):
    """How a drill treats automation and people."""

    NO_AUTOMATION = "no-automation"
    AUTO_RECOVERY = "auto-recovery"
    CHAOS = "chaos"


class Role(StrEnum):
    RESPONDER = "responder"
    FACILITATOR = "facilitator"
    OBSERVER = "observer"


class Metadata(_Model):
    name: str = Field(
        max_length=63, description="Drill name: lowercase letters, digits and dashes, at most 63 characters."
    )
    description: Text = ""
    owner: Name | None = None
    labels: dict[Name, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict, max_length=_L.labels)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if redaction.redact(value) != value:
            raise ValueError("this looks like a secret (a token or key), not a name: use e.g. api-outage")
        if len(value) > 63 or not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid name: use lowercase letters, digits and dashes, e.g. api-outage"
            )
        return value


class SandboxTarget(_Model):
    """The built-in local sandbox: a real HTTP service under a real supervisor."""

    kind: Literal["sandbox"]
    home: PathText | None = Field(default=None, description="Sandbox state folder; default $DRILL_HOME/sandbox.")


class SandboxAutorestartPolicy(_Model):
    """The sandbox supervisor's auto-restart: suspended = off, restored = back to its prior value."""

    kind: Literal["sandbox-autorestart"]
    name: Name
    description: Text = ""


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a namespace name: lowercase letters, digits and dashes, e.g. shop")
    return value


def _dns_name(value: str) -> str:
    if len(value) > 253 or not _DNS_NAME.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes object name: lowercase letters, digits, '-' and '.'")
    return value


Namespace = Annotated[str, Field(max_length=63), AfterValidator(_dns_label)]
ObjectName = Annotated[str, Field(max_length=253), AfterValidator(_dns_name)]


class ScaleMitigation(_Model):
    """What the simulated responder (``--auto-respond``) does to mitigate: scale a Deployment back up."""

    namespace: Namespace
    deployment: ObjectName
    replicas: int = Field(ge=1, le=10_000)


class KubernetesTarget(_Model):
    """A Kubernetes cluster: a kubeconfig context (or the in-cluster config) and the namespaces a drill may touch."""

    kind: Literal["kubernetes"]
    kubeconfig: PathText | None = Field(
        default=None, description="Kubeconfig file; default $KUBECONFIG, else ~/.kube/config."
    )
    context: Name | None = Field(default=None, description="Kubeconfig context; `drill run --context` overrides.")
    in_cluster: bool = Field(default=False, description="Use the pod's ServiceAccount instead of a kubeconfig.")
    namespaces: list[Namespace] = Field(
        min_length=1, max_length=_L.namespaces, description="Namespaces this drill may select objects in."
    )
    protected_namespaces: list[Namespace] = Field(
        default_factory=list,
        max_length=_L.policies,
        description=f"Namespaces never touched, besides {', '.join(PROTECTED_NAMESPACES)}.",
    )
    allow_protected: list[Namespace] = Field(
        default_factory=list,
        max_length=_L.policies,
        description="Protected namespaces this drill may touch anyway (say so explicitly, e.g. [kube-system]).",
    )
    mitigation: ScaleMitigation | None = Field(
        default=None, description="What the simulated responder of `drill run --auto-respond` does to mitigate."
    )
    concurrency: int = Field(
        default=16,
        ge=1,
        le=256,
        description="API requests in flight at once when suspending and restoring many objects (1: in order).",
    )

    def protected(self) -> set[str]:
        return (set(PROTECTED_NAMESPACES) | set(self.protected_namespaces)) - set(self.allow_protected)

    @model_validator(mode="after")
    def _namespaces(self) -> KubernetesTarget:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("inCluster: true uses the pod's ServiceAccount; remove kubeconfig and context")
        refused = sorted(set(self.namespaces) & self.protected())
        if refused:
            raise ValueError(
                f"namespaces: {', '.join(refused)} is protected; list it under allowProtected to drill there anyway"
            )
        return self


class ObjectRef(_Model):
    namespace: Namespace
    name: ObjectName


class LabelSelection(_Model):
    labels: str = Field(
        min_length=1,
        max_length=1024,
        description="A Kubernetes label selector, e.g. 'drill.dev/remediation=true' or 'tier in (web,api)'.",
    )
    namespaces: list[Namespace] = Field(
        default_factory=list, max_length=_L.namespaces, description="Default: every namespace of the target."
    )


class KubernetesPolicy(_Model):
    """Remediation automation on Kubernetes, one object by name or many by label selector."""

    kind: Literal[
        "hpa",
        "deployment",
        "statefulset",
        "cronjob",
        "keda-scaledobject",
        "argocd-application",
        "flux",
        "vpa",
        "generic",
    ]
    name: Annotated[str, Field(max_length=63), AfterValidator(_dns_label)]
    description: Text = ""
    object: ObjectRef | None = Field(default=None, description="One object: {namespace, name}.")
    selector: LabelSelection | None = Field(default=None, description="Every object matching a label selector.")
    api_version: Annotated[str, Field(max_length=253)] | None = Field(
        default=None, description="flux and generic: the object's apiVersion, e.g. helm.toolkit.fluxcd.io/v2."
    )
    resource_kind: Annotated[str, Field(max_length=63)] | None = Field(
        default=None, description="flux and generic: the object's kind, e.g. HelmRelease."
    )
    patch: dict[str, Any] | None = Field(
        default=None, description="generic: the JSON merge patch that suspends it, e.g. {spec: {paused: true}}."
    )

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str | None) -> str | None:
        if value is not None and not _API_VERSION.match(value):
            raise ValueError(f"{value!r} is not an apiVersion: write group/version, e.g. apps/v1")
        return value

    @field_validator("resource_kind")
    @classmethod
    def _resource_kind(cls, value: str | None) -> str | None:
        if value is not None and not _KIND.match(value):
            raise ValueError(f"{value!r} is not a kind: write it as the API does, e.g. HelmRelease")
        return value

    @model_validator(mode="after")
    def _selection(self) -> KubernetesPolicy:
        if (self.object is None) == (self.selector is None):
            raise ValueError("give exactly one of object: {namespace, name} or selector: {labels: ...}")
        custom = self.kind in ("flux", "generic")
        if not custom and (self.api_version or self.resource_kind):
            raise ValueError(f"apiVersion/resourceKind: only for kinds flux and generic; {self.kind} knows its own")
        if self.kind == "generic":
            if not (self.api_version and self.resource_kind):
                raise ValueError("generic: give apiVersion and resourceKind of the objects to suspend")
            if not self.patch:
                raise ValueError("patch: a generic policy needs the JSON merge patch that suspends it")
            if set(self.patch) & {"metadata", "apiVersion", "kind", "status"}:
                raise ValueError("patch: may change spec fields (or data), not metadata, apiVersion, kind or status")
        elif self.patch is not None:
            raise ValueError(f"patch: only for kind generic; {self.kind} has its own knob")
        if bool(self.api_version) != bool(self.resource_kind):
            raise ValueError("apiVersion and resourceKind go together")
        return self

    def namespaces(self, target: KubernetesTarget) -> list[str]:
        if self.object is not None:
            return [self.object.namespace]
        assert self.selector is not None
        return list(self.selector.namespaces or target.namespaces)


class ChaosRunOptions(_Model):
    """``chaos run``'s options, kept with the drill: as if written on the ``drill run`` command line before
    the options typed there (which therefore override these; every var still wins over every var file)."""

    vars: dict[Annotated[str, Field(max_length=_L.name_chars)], Any] = Field(
        default_factory=dict,
        max_length=_L.configuration_entries,
        description="Configuration values, as `--var KEY=VALUE` (typed as written in YAML).",
    )
    var_files: list[PathText] = Field(
        default_factory=list,
        max_length=_L.configuration_entries,
        description="Configuration/secrets files (JSON, YAML, .env), relative to this drill file; as `--var-file`.",
    )
    settings: PathText | None = Field(
        default=None, description="A Chaos Toolkit settings file (global controls), relative to this drill file."
    )
    dry: Literal["probes", "actions", "activities", "pause"] | None = Field(
        default=None, description="Skip these activities, as `--dry`."
    )
    hypothesis_strategy: (
        Literal["default", "before-method-only", "after-method-only", "during-method-only", "continuously", "skip"]
        | None
    ) = Field(default=None, description="As `--hypothesis-strategy`; default: the experiment's runtime block.")
    rollback_strategy: Literal["default", "always", "never", "deviated"] | None = Field(
        default=None, description="As `--rollback-strategy`; default: the experiment's runtime block."
    )


class ExperimentRef(_Model):
    path: PathText = Field(description="Chaos Toolkit experiment (JSON or YAML), relative to this drill file.")
    configuration: dict[str, Any] = Field(
        default_factory=dict,
        max_length=_L.configuration_entries,
        description="Values merged over the experiment's own configuration.",
    )
    chaos: ChaosRunOptions = Field(
        default_factory=ChaosRunOptions,
        description="`chaos run`'s options for this experiment; those given to `drill run` override them.",
    )


class Participant(_Model):
    name: Name = Field(description="How the person names themself in commands (--as NAME), e.g. alice.")
    role: Role
    slack: Name | None = Field(default=None, description="Slack member id, e.g. U024BE7LH.")
    email: Annotated[str, Field(max_length=254)] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if redaction.redact(value) != value:
            raise ValueError("this looks like a secret (a token or key), not a person's name: use e.g. alice")
        if not _PERSON.match(value):
            raise ValueError(f"{value!r}: use letters, digits, dots, dashes or underscores, e.g. alice")
        return value

    @field_validator("slack")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK_USER.match(value):
            raise ValueError("a Slack member id looks like U024BE7LH (profile > copy member ID)")
        return value


class Expectations(_Model):
    """Targets the report compares timings against; all optional."""

    acknowledge: PositiveDuration | None = None
    diagnose: PositiveDuration | None = None
    mitigate: PositiveDuration | None = None
    resolve: PositiveDuration | None = None
    recover: PositiveDuration | None = Field(
        default=None,
        description="auto-recovery drills: the time the automation has to restore the steady state.",
    )


class WatchedPods(_Model):
    namespace: Namespace
    selector: str = Field(min_length=1, max_length=1024, description="A label selector, e.g. 'app=web'.")


class WatchedObject(_Model):
    api_version: Annotated[str, Field(max_length=253)] = Field(description="e.g. remediation.drill.dev/v1.")
    kind: Annotated[str, Field(max_length=63)] = Field(description="As the API writes it, e.g. Remediator.")
    namespace: Namespace | None = Field(default=None, description="None for a cluster-scoped object.")
    name: ObjectName

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if not _API_VERSION.match(value):
            raise ValueError(f"{value!r} is not an apiVersion: write group/version, e.g. apps/v1")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not _KIND.match(value):
            raise ValueError(f"{value!r} is not a kind: write it as the API does, e.g. Remediator")
        return value


class StatusCondition(_Model):
    type: str = Field(min_length=1, max_length=316, description="status.conditions[].type, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = "True"

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> object:
        return str(value) if isinstance(value, bool) else value  # YAML's bare True means the string


class WatchCondition(_Model):
    """One condition of the steady state on Kubernetes objects, watched through the API: exactly one of
    ``deployment`` (with ``availableReplicas``), ``pods`` (with ``ready``), ``object`` (with ``condition``)."""

    deployment: ObjectRef | None = Field(default=None, description="A Deployment: {namespace, name}.")
    available_replicas: int | None = Field(
        default=None, ge=1, le=100_000, description="At least this many available; default: all of spec.replicas."
    )
    pods: WatchedPods | None = Field(default=None, description="The pods behind a label selector.")
    ready: int | None = Field(default=None, ge=1, le=100_000, description="At least this many Ready; default 1.")
    object: WatchedObject | None = Field(default=None, description="Any object: {apiVersion, kind, namespace, name}.")
    condition: StatusCondition | None = Field(default=None, description="Its status condition: {type, status}.")

    @model_validator(mode="after")
    def _one(self) -> WatchCondition:
        given = [k for k in ("deployment", "pods", "object") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of deployment: {namespace, name}, pods: {namespace, selector} "
                "or object: {apiVersion, kind, namespace, name}"
            )
        if self.available_replicas is not None and self.deployment is None:
            raise ValueError("availableReplicas: only with deployment")
        if self.ready is not None and self.pods is None:
            raise ValueError("ready: only with pods")
        if (self.condition is None) != (self.object is None):
            raise ValueError("object and condition go together: object: {...}, condition: {type: Ready}")
        return self


class Detection(_Model):
    """How the steady state is watched to detect mitigation (or automatic recovery)."""

    interval: PositiveDuration = Field(default=1.0, description="Time between two steady-state checks.")
    hold_window: Duration = Field(
        default=10.0, description="The steady state must hold this long to count as mitigated."
    )
    conditions: list[WatchCondition] = Field(
        default_factory=list,
        max_length=_L.policies,
        description="Kubernetes only: the steady state as conditions on objects, watched instead of the probes.",
    )

    def check_target(self, target: SandboxTarget | KubernetesTarget) -> None:
        if self.conditions and not isinstance(target, KubernetesTarget):
            raise ValueError(
                f"detection.conditions: watch conditions on Kubernetes objects; a {target.kind} target has none "
                "(its steady state is the experiment's probes): remove detection.conditions"
            )


class AbortProbe(_Model):
    """A Chaos Toolkit probe; when its result falls outside ``tolerance`` the drill aborts and restores."""

    name: Annotated[str, Field(max_length=256)]
    provider: dict[str, Any]
    tolerance: Any
    type: Literal["probe"] = "probe"

    def activity(self) -> dict[str, Any]:
        return {"type": "probe", "name": self.name, "provider": self.provider, "tolerance": self.tolerance}


class Guardrails(_Model):
    max_duration: PositiveDuration = Field(
        default=1800.0, description="Hard cap on the run from suspension; reaching it times out and restores."
    )
    abort_when: list[AbortProbe] = Field(default_factory=list, max_length=_L.abort_probes)
    check_interval: PositiveDuration = Field(default=5.0, description="Time between two guardrail checks.")


class Hint(_Model):
    text: str = Field(min_length=1, max_length=_L.text_chars)
    after: Duration | None = Field(
        default=None, description="Reveal automatically this long after the fault is active; else on request."
    )


class SlackNotification(_Model):
    channel: Name = Field(description="Channel name (#drills) or id (C0123456).")
    token_env: Name = Field(
        default="SLACK_BOT_TOKEN", description="Environment variable holding the bot token; never the token."
    )
    mention_participants: bool = True

    @field_validator("token_env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError("name an environment variable (e.g. SLACK_BOT_TOKEN), never paste a token here")
        return value


class Notifications(_Model):
    slack: SlackNotification | None = None


class Blackout(_Model):
    start: datetime
    end: datetime
    reason: Text = ""

    @model_validator(mode="after")
    def _order(self) -> Blackout:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("blackout times need a timezone, e.g. 2026-12-24T00:00:00Z")
        if self.end <= self.start:
            raise ValueError("a blackout must end after it starts")
        return self


class Schedule(_Model):
    cron: str = Field(
        max_length=256,
        description=(
            "Five-field cron with the standard crontab meaning: minute hour day-of-month month day-of-week, "
            "e.g. '0 10 1 */3 *' (quarterly, 10:00) or '0 10 * * 1-5' (weekdays, 10:00). Day of week: 0 or 7 = "
            "Sunday, 1 = Monday ... 6 = Saturday, or sun ... sat. When both day fields are set, a day matching "
            "either runs, as in crontab."
        ),
    )
    timezone: Name = "UTC"
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return cron.validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Europe/Paris or UTC") from exc
        return value


class Spec(_Model):
    mode: Mode
    target: Annotated[SandboxTarget | KubernetesTarget, Field(discriminator="kind")]
    policies: list[Annotated[SandboxAutorestartPolicy | KubernetesPolicy, Field(discriminator="kind")]] = Field(
        default_factory=list, max_length=_L.policies
    )
    experiment: ExperimentRef
    failure_mode: Annotated[str, Field(max_length=256)] | None = Field(
        default=None, description="Catalog id of the failure mode this drill exercises."
    )
    participants: list[Participant] = Field(default_factory=list, max_length=_L.participants)
    expectations: Expectations = Field(default_factory=Expectations)
    detection: Detection = Field(default_factory=Detection)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    hints: list[Hint] = Field(default_factory=list, max_length=_L.hints)
    notifications: Notifications = Field(default_factory=Notifications)
    schedule: Schedule | None = None
    blackouts: list[Blackout] = Field(default_factory=list, max_length=_L.blackouts)

    @field_validator("target", mode="before")
    @classmethod
    def _target_kind(cls, value: object) -> object:
        if isinstance(value, dict) and value.get("kind") not in TARGET_KINDS:
            raise ValueError(f"unknown target kind {value.get('kind')!r}; supported: {', '.join(TARGET_KINDS)}")
        return value

    @field_validator("policies", mode="before")
    @classmethod
    def _policy_kinds(cls, value: object) -> object:
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict) and "kind" not in item:
                    raise ValueError(
                        f"[{index}].kind: required field is missing; supported kinds: {', '.join(POLICY_KINDS)}"
                    )
                if isinstance(item, dict) and item.get("kind") not in POLICY_KINDS:
                    raise ValueError(
                        f"[{index}].kind: unknown policy kind {item.get('kind')!r}; "
                        f"supported: {', '.join(POLICY_KINDS)}"
                    )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        names = [p.name for p in self.participants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"participants: duplicate name(s) {', '.join(dupes)}; list each person once")
        policy_names = [p.name for p in self.policies]
        dupes = sorted({n for n in policy_names if policy_names.count(n) > 1})
        if dupes:
            raise ValueError(f"policies: duplicate name(s) {', '.join(dupes)}; give each policy its own name")
        self._policies_fit_target()
        self.detection.check_target(self.target)
        if self.mode is Mode.NO_AUTOMATION:
            if not self.policies:
                raise ValueError("policies: a no-automation drill suspends at least one policy")
            if not any(p.role is Role.RESPONDER for p in self.participants):
                raise ValueError("participants: a no-automation drill needs at least one responder")
        if self.mode is Mode.AUTO_RECOVERY:
            if self.policies:
                raise ValueError("policies: an auto-recovery drill leaves automation on; remove the policies")
            if self.expectations.recover is None:
                raise ValueError("expectations.recover: an auto-recovery drill needs a recovery target, e.g. 30s")
        for index, hint in enumerate(self.hints):
            if hint.after is not None and hint.after >= self.guardrails.max_duration:
                raise ValueError(f"hints[{index}].after: must come before guardrails.maxDuration")
        if self.detection.hold_window >= self.guardrails.max_duration:
            raise ValueError("detection.holdWindow: must be shorter than guardrails.maxDuration")
        return self

    def _policies_fit_target(self) -> None:
        target = self.target
        for index, policy in enumerate(self.policies):
            if isinstance(target, SandboxTarget) != isinstance(policy, SandboxAutorestartPolicy):
                raise ValueError(
                    f"policies[{index}].kind: {policy.kind} does not apply to a {target.kind} target; "
                    + (
                        "the sandbox has one policy, sandbox-autorestart"
                        if isinstance(target, SandboxTarget)
                        else f"use one of {', '.join(KUBE_POLICY_KINDS)}"
                    )
                )
            if isinstance(policy, KubernetesPolicy) and isinstance(target, KubernetesTarget):
                for ns in policy.namespaces(target):
                    if ns in target.protected():
                        raise ValueError(
                            f"policies[{index}]: namespace {ns} is protected; list it under "
                            "target.allowProtected to drill there anyway"
                        )
                    if ns not in target.namespaces:
                        raise ValueError(
                            f"policies[{index}]: namespace {ns} is not one of the target's namespaces "
                            f"({', '.join(target.namespaces)}); add it to target.namespaces"
                        )


class Drill(_Model):
    """A drill definition: ``apiVersion``, ``kind: Drill``, ``metadata``, ``spec``."""

    api_version: Literal["drill.dev/v1alpha1"]
    kind: Literal["Drill"]
    metadata: Metadata
    spec: Spec

    def participant(self, name: str) -> Participant | None:
        return next((p for p in self.spec.participants if p.name == name), None)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a drill file, by alias (the names written in YAML)."""
    schema = Drill.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "drill definition"
    return schema
