"""Fixtures for tests against the real test control plane built from tests/cluster.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok) is
started once per pytest session by ``tests/cluster/cluster.sh start``, or reused when one is
already running, and stopped at the end only if this session started it. Nothing here skips:
a missing binary is built (before the first test, outside any test's timeout) or the session
fails with the build's error.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests import conftest as shared

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "cluster"
CLUSTER_SH = CLUSTER_DIR / "cluster.sh"
BUILD_SH = CLUSTER_DIR / "build.sh"
CRD_DIR = CLUSTER_DIR / "crds"
FETCH_CRDS_SH = CLUSTER_DIR / "fetch-crds.sh"
REMEDIATOR_CRD = CLUSTER_DIR.parent.parent / "examples" / "remediator" / "crd.yaml"
FETCH_CRDS_TIMEOUT_S = 1800
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
START_TIMEOUT_S = 300
BUILD_TIMEOUT_S = 3 * 3600

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value (returned), or fail after ``timeout`` s."""
    return cast(T, shared.wait_for(condition, timeout_s=timeout, what=what, interval_s=interval))


def deployment(
    name: str,
    replicas: int,
    *,
    containers: list[client.V1Container] | None = None,
    node_selector: dict[str, str] | None = None,
) -> client.V1Deployment:
    """A Deployment labelled ``app: <name>`` with one placeholder container unless ``containers`` is given."""
    labels = {"app": name}
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=containers or [client.V1Container(name="app", image=f"registry.invalid/{name}:1")],
                    node_selector=node_selector,
                    termination_grace_period_seconds=5,
                ),
            ),
        ),
    )


def bind_role(rbac: client.RbacAuthorizationV1Api, ns: str, *, role: str, service_account: str) -> None:
    """Bind the namespaced Role ``role`` to a ServiceAccount of ``ns`` (the binding is named after the role)."""
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=role),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=role),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=service_account, namespace=ns)],
        ),
    )


@dataclass(frozen=True)
class KubeCluster:
    """A running test control plane."""

    state_dir: Path
    kubeconfig: Path
    audit_log: Path
    admin_token: str
    server: str
    ca_file: Path
    started_here: bool

    def api_client(self, token: str | None = None) -> client.ApiClient:
        """An API client for the admin (kubeconfig), or for a bearer ``token`` (e.g. a ServiceAccount's)."""
        if token is None:
            return config.new_client_from_config(config_file=str(self.kubeconfig))
        cfg = client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.verify_ssl = True
        cfg.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(cfg)

    def audit_events(self, *, user: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Write events (create/update/patch/delete) of the audit log, optionally by user and namespace."""
        events: list[dict[str, Any]] = []
        if not self.audit_log.exists():
            return events
        with self.audit_log.open(encoding="utf-8") as fh:
            for line in fh:
                # cheap pre-filters on the compact JSON lines before parsing them
                if user is not None and f'"username":{json.dumps(user)}' not in line:
                    continue
                if namespace is not None and f'"namespace":{json.dumps(namespace)}' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:  # a line being written right now
                    continue
                if ev.get("verb") not in WRITE_VERBS or ev.get("stage") != "ResponseComplete":
                    continue
                if user is not None and ev.get("user", {}).get("username") != user:
                    continue
                if namespace is not None and ev.get("objectRef", {}).get("namespace") != namespace:
                    continue
                events.append(ev)
        return events


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _kube_items_selected(session: pytest.Session) -> bool:
    return any(item.get_closest_marker("kube") is not None for item in session.items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fetch the upstream CRDs and build the control plane binaries before the first test, so no test's
    timeout covers a download or a cold build."""
    if not _kube_items_selected(session):
        return
    _upstream_crd_dir()  # fetched once into the cache before the first test; a failed fetch ends the session
    if _run(["bash", str(BUILD_SH), "--check"], 60).returncode == 0:
        return
    capman = session.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        sys.stderr.write(
            "\n[kube] control plane binaries not in the cache: building them now with tests/cluster/build.sh"
            " (a cold build takes tens of minutes on 2 cores)\n"
        )
        sys.stderr.flush()
        proc = subprocess.run(["bash", str(BUILD_SH)], timeout=BUILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise pytest.UsageError(f"tests/cluster/build.sh failed with exit code {proc.returncode}; see its output above")


def _upstream_crd_dir() -> Path:
    """The cache directory of the upstream CRDs pinned in tests/cluster/crds-upstream.env, fetched if missing.

    A no-op when cached. There is no fallback: a failed fetch (no proxy, a sha256 mismatch) fails with its error.
    """
    proc = _run(["bash", str(FETCH_CRDS_SH)], FETCH_CRDS_TIMEOUT_S)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise pytest.UsageError(
            f"tests/cluster/fetch-crds.sh failed (exit {proc.returncode}); no CRDs installed:\n{proc.stderr}"
        )
    return Path(lines[-1])


def _crd_bodies() -> list[dict[str, Any]]:
    """Every CRD the kube tests install: the upstream ones (Argo CD, Flux, KEDA, VPA), the minimal ones of
    tests/cluster/crds/ for kinds upstream's set doesn't cover, and the example remediator's CRD."""
    paths = [*sorted(_upstream_crd_dir().glob("*.yaml")), *sorted(CRD_DIR.glob("*.yaml")), REMEDIATOR_CRD]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    bodies: dict[str, dict[str, Any]] = {}
    for path in paths:
        for body in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
            if not body or body.get("kind") != "CustomResourceDefinition":
                continue
            name = body["metadata"]["name"]
            if name in bodies:
                raise pytest.UsageError(f"CRD {name} is defined twice (again in {path}): remove the minimal one")
            bodies[name] = body
    return list(bodies.values())


def apply_crds(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    bodies = _crd_bodies()
    for body in bodies:
        name = body["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(body, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            ext.replace_custom_resource_definition(name, body, _preload_content=False)

    def established(name: str) -> bool:
        # raw JSON: the typed model of a large upstream schema is slow to build on every poll
        crd = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
        conds = crd.get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    for name in (b["metadata"]["name"] for b in bodies):
        wait_until(lambda n=name: established(n), timeout=30, what=f"CRD {name} Established")


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """Start the test control plane once per session (or reuse a running one); stop it if started here."""
    state_dir = Path(os.environ.get("DRILL_KUBE_STATE_DIR", "/tmp/drill-kube"))
    started_here = _run(["bash", str(CLUSTER_SH), "status"], 60).returncode != 0
    if started_here:
        proc = _run(["bash", str(CLUSTER_SH), "start"], START_TIMEOUT_S)
        if proc.returncode != 0:
            pytest.fail(
                f"tests/cluster/cluster.sh start failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                pytrace=False,
            )
    env: dict[str, str] = {}
    for line in _run(["bash", str(CLUSTER_SH), "env"], 30).stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    cluster = KubeCluster(
        state_dir=state_dir,
        kubeconfig=Path(env["KUBECONFIG"]),
        audit_log=Path(env["DRILL_KUBE_AUDIT_LOG"]),
        admin_token=Path(env["DRILL_KUBE_ADMIN_TOKEN_FILE"]).read_text(encoding="utf-8").strip(),
        server=env["DRILL_KUBE_SERVER"],
        ca_file=state_dir / "pki" / "ca.crt",
        started_here=started_here,
    )
    with cluster.api_client() as api:
        apply_crds(api)
    try:
        yield cluster
    finally:
        if started_here:
            _run(["bash", str(CLUSTER_SH), "stop"], 120)


@pytest.fixture
def kube_api(kube_cluster: KubeCluster) -> Iterator[client.ApiClient]:
    """An API client authenticated as the cluster admin."""
    with kube_cluster.api_client() as api:
        yield api


@pytest.fixture
def kube_namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount ready), deleted after the test."""
    core = client.CoreV1Api(kube_api)
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"drill-test": "1"})))

    def default_sa() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    wait_until(default_sa, timeout=30, what=f"ServiceAccount {name}/default")
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def kube_wait() -> Callable[..., Any]:
    """The bounded poll helper: ``kube_wait(condition, timeout=..., what=...)``."""
    return wait_until
