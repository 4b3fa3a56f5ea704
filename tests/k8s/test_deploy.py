"""deploy/: the kustomize base and overlays render with the real kubectl, and what they render is sound.

Every service has a Deployment with probes on its health port, requests and limits, and a non-root,
read-only securityContext; only crd-gateway can reach the Kubernetes API, with the verbs it uses and no
more; NATS is a 3-node JetStream cluster that fsyncs every write. The samples are valid BackupRequests and
RestoreRequests, and docker-compose.yml has the shape Docker expects (Docker itself is not needed).
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lc2backup.archiver.settings import Settings as ArchiverSettings
from lc2backup.crd_gateway import crd
from lc2backup.crd_gateway.settings import Settings as GatewaySettings
from lc2backup.db_export.settings import Settings as DbExportSettings
from lc2backup.doclib_transfer.settings import Settings as DoclibSettings
from lc2backup.domain import API_GROUP, API_VERSION, manifest_problems, parse_spec
from lc2backup.domain.restoring import RESTORE_KIND, parse_restore_spec
from lc2backup.metadata.settings import Settings as MetadataSettings
from lc2backup.restorer.settings import Settings as RestorerSettings
from lc2backup.runtime import ServiceSettings

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "crd-gateway": GatewaySettings,
    "db-export": DbExportSettings,
    "doclib-transfer": DoclibSettings,
    "metadata": MetadataSettings,
    "archiver": ArchiverSettings,
    "restorer": RestorerSettings,
}
SERVICES: dict[str, int] = {name: s.model_fields["health"].default.port for name, s in SETTINGS.items()}
TARGETS = ["deploy/k8s", "deploy/k8s/overlays/dev", "deploy/k8s/overlays/prod"]
Doc = dict[str, Any]


def render(target: str) -> list[Doc]:
    done = subprocess.run(["kubectl", "kustomize", str(ROOT / target)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return render(request.param)


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_service_has_a_sound_deployment(rendered: list[Doc]) -> None:
    deployments = by_kind(rendered, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, port in SERVICES.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == [f"lc2backup-{name}"]
        assert container["image"].startswith("lc2backup:")
        assert [p["containerPort"] for p in container["ports"]] == [port]
        port_name = container["ports"][0]["name"]
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            assert container[probe]["httpGet"] == {"path": path, "port": port_name}, f"{name} {probe}"
        assert {"configMapRef": {"name": "lc2backup-config"}} in container["envFrom"]
        assert pod["serviceAccountName"] == f"lc2backup-{name}"
        assert pod["automountServiceAccountToken"] is (name == "crd-gateway")


def _containers(docs: list[Doc]) -> list[tuple[str, Doc, Doc]]:
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            pod = d["spec"]["template"]["spec"]
            out += [(d["metadata"]["name"], pod, c) for c in pod["containers"]]
    return out


def test_every_container_is_limited_non_root_and_read_only(rendered: list[Doc]) -> None:
    containers = _containers(rendered)
    assert len(containers) == len(SERVICES) + 2  # + NATS and PostgreSQL
    for name, pod, container in containers:
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"} == set(resources["limits"]), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name


def test_only_crd_gateway_reaches_the_kubernetes_api_with_minimal_verbs(rendered: list[Doc]) -> None:
    assert not by_kind(rendered, "Role") and not by_kind(rendered, "RoleBinding")
    (role,) = by_kind(rendered, "ClusterRole").values()
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("backup.liferay.cloud",), ("backuprequests", "restorerequests")): ["get", "list", "watch"],
        (("backup.liferay.cloud",), ("backuprequests/status", "restorerequests/status")): ["patch"],
        (("",), ("events",)): ["create"],
    }
    (binding,) = by_kind(rendered, "ClusterRoleBinding").values()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "lc2backup-crd-gateway", "namespace": "lc2backup"}
    ]
    for name, account in by_kind(rendered, "ServiceAccount").items():
        assert account.get("automountServiceAccountToken", True) is (name == "lc2backup-crd-gateway"), name


def test_nats_is_jetstream_with_fsync_on_every_write(rendered: list[Doc]) -> None:
    nats = by_kind(rendered, "StatefulSet")["nats"]
    config = by_kind(rendered, "ConfigMap")["nats-config"]["data"]["nats.conf"]
    assert "sync_interval: always" in config and "store_dir: /data/jetstream" in config
    assert [t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]] == ["data"]
    settings = by_kind(rendered, "ConfigMap")["lc2backup-config"]["data"]
    if nats["spec"]["replicas"] == 3:
        assert config.count("nats-headless:6222") == 3 and settings["LC2_STREAMS__REPLICAS"] == "3"
    else:  # the dev overlay: one node, no cluster block, R1 streams
        assert nats["spec"]["replicas"] == 1 and "cluster" not in config and settings["LC2_STREAMS__REPLICAS"] == "1"
    assert settings["LC2_HEALTH__HOST"] == settings["LC2_API__HOST"] == "0.0.0.0"


def test_the_rendered_crds_are_the_generated_ones(rendered: list[Doc]) -> None:
    rendered_crds = by_kind(rendered, "CustomResourceDefinition")
    assert rendered_crds == {resource.name: resource.manifest() for resource in crd.RESOURCES}


def test_prod_takes_its_secret_from_outside_git() -> None:
    assert not by_kind(render("deploy/k8s/overlays/prod"), "Secret")
    assert by_kind(render("deploy/k8s"), "Secret")["lc2backup-secrets"]


def _spec_validator() -> jsonschema.Draft4Validator:
    schema = copy.deepcopy(crd.BACKUP_REQUESTS.spec_schema())
    schema["properties"]["database"]["properties"]["databaseName"]["type"] = ["string", "null"]
    return jsonschema.Draft4Validator(schema)


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure", "local"])
def test_samples_are_valid_backup_requests(provider: str) -> None:
    doc = yaml.safe_load((ROOT / f"deploy/samples/backuprequest-{provider}.yaml").read_text())
    assert manifest_problems(doc) == []
    assert parse_spec(doc["spec"]).provider == provider
    assert not list(_spec_validator().iter_errors(doc["spec"]))


def test_the_restore_sample_is_a_valid_restore_request() -> None:
    doc = yaml.safe_load((ROOT / "deploy/samples/restorerequest-local.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == (f"{API_GROUP}/{API_VERSION}", RESTORE_KIND)
    assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
    assert parse_restore_spec(doc["spec"]).target is not None
    assert not list(jsonschema.Draft4Validator(crd.RESTORE_REQUESTS.spec_schema()).iter_errors(doc["spec"]))


def test_docker_compose_runs_the_stack_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"nats", "postgres", "s3", *SERVICES} <= set(services)
    for name in ("nats", "postgres", "s3", *SERVICES):
        check = services[name]["healthcheck"]["test"]
        assert check[0] == "CMD" and len(check) > 1, name
    for name, port in SERVICES.items():
        service = services[name]
        assert service["command"] == [f"lc2backup-{name}"]
        assert service["build"] == "." and service["read_only"] is True
        assert f":{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["LC2_NATS__URL"] == "nats://nats:4222"
        assert service["environment"]["LC2_HEALTH__HOST"] == "0.0.0.0"
        assert service["depends_on"]["nats"] == {"condition": "service_healthy"}
    assert "--jetstream" in services["nats"]["command"]
    for mount in (*services["postgres"]["volumes"], *services["s3"]["volumes"]):
        host = mount.split(":", 1)[0]
        assert not host.startswith("./") or (ROOT / host).is_file(), mount
    assert (ROOT / "Dockerfile").is_file()
