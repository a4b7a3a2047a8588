"""The deployment files in deploy/ agree with the code they deploy.

Every YAML and JSON file parses; every metric an alert or a dashboard panel queries is one the
code defines (read from the code at test time), with the labels the query uses; every setting
the compose file and the Kubernetes manifests pass is one Forewarn reads, and Forewarn accepts
its value; the image runs as a non-root user; every Deployment has probes and resources; the
alert runbooks exist in docs/operations.md. With `promtool` on PATH, Prometheus itself checks
the configuration and the rules and runs the rules' unit tests (deploy/prometheus/alerts.test.yml).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "forewarn.json"
OPERATIONS = ROOT / "docs" / "operations.md"
METRIC_SOURCES = ("app", "consumers", "notifiers")

# Metrics another engineer has announced but not merged yet: name -> (type, label names).
# The deploy files may already query them. Keep this list to these; an entry is ignored
# once the code defines the name (the code wins), so delete it then. Any other name that the
# code does not define fails the test.
ANNOUNCED_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "forewarn_outages": ("Gauge", ("state", "severity")),
    "forewarn_update_overdue_outages": ("Gauge", ()),
    "forewarn_circuit_open": ("Gauge", ("channel", "provider")),
}
# Settings announced with those metrics (the metrics port of detector, planner, notifier).
ANNOUNCED_SETTINGS = {"FOREWARN_METRICS_PORT"}

METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary"}
# Labels Prometheus adds to every scraped or derived series.
TARGET_LABELS = {"instance", "job", "le", "quantile"}
METRIC_NAME = re.compile(r"\bforewarn_[a-z0-9_]+")
COMPONENTS = ("api", "detector", "planner", "notifier")


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    labels: frozenset[str]

    def series(self) -> set[str]:
        """The series names this metric exposes, as prometheus_client writes them."""
        if self.kind == "Counter":
            base = self.name.removesuffix("_total")
            return {f"{base}_total", f"{base}_created"}
        if self.kind == "Histogram":
            return {f"{self.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        if self.kind == "Summary":
            return {self.name, *(f"{self.name}_{s}" for s in ("sum", "count", "created"))}
        return {self.name}


def _string_list(node: ast.expr) -> tuple[str, ...]:
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        )
    return ()


@cache
def metrics_in_code() -> dict[str, Metric]:
    """Every `Counter("forewarn_…", …)`, `Gauge`, `Histogram`, `Summary` under the code dirs."""
    found: dict[str, Metric] = {}
    for directory in METRIC_SOURCES:
        for path in sorted((ROOT / directory).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if kind not in METRIC_TYPES:
                    continue
                keywords = {k.arg: k.value for k in node.keywords if k.arg}
                name_node = node.args[0] if node.args else keywords.get("name")
                if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
                    continue
                if not name_node.value.startswith("forewarn_"):
                    continue
                labels_node = node.args[2] if len(node.args) > 2 else keywords.get("labelnames")
                labels = _string_list(labels_node) if labels_node is not None else ()
                found[name_node.value] = Metric(name_node.value, kind, frozenset(labels))
    return found


def known_metrics() -> dict[str, Metric]:
    """Series name -> metric: the code's metrics, plus announced ones the code lacks so far."""
    metrics = {
        name: Metric(name, kind, frozenset(labels))
        for name, (kind, labels) in ANNOUNCED_METRICS.items()
    }
    metrics.update(metrics_in_code())
    return {series: metric for metric in metrics.values() for series in metric.series()}


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml(ALERTS)[0]
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_panels() -> Iterator[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[tuple[str, str]]:
    """(where, PromQL or template text) of every alert expression, annotation and panel."""
    found: list[tuple[str, str]] = []
    for rule in alert_rules():
        found.append((f"alert {rule['alert']}", rule["expr"]))
        for key, text in rule.get("annotations", {}).items():
            if METRIC_NAME.search(text):  # e.g. a {{ query "…" }} in a description
                found.append((f"alert {rule['alert']} annotation {key}", text))
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"]))
    return found


def _matching_paren(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def label_uses(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric series, label names) pairs an expression relies on.

    Two kinds: matchers right after a metric (`m{a="x"}`), and the labels of `by (...)` of an
    aggregation, which every metric inside that aggregation must carry.
    """
    for match in re.finditer(r"\b(forewarn_[a-z0-9_]+)\{([^}]*)\}", expr):
        names = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(2)))
        yield match.group(1), names
    for match in re.finditer(r"\bby\s*\(([^)]*)\)\s*\(", expr):
        labels = {label.strip() for label in match.group(1).split(",") if label.strip()}
        inner_start = match.end() - 1
        inner = expr[inner_start : _matching_paren(expr, inner_start) + 1]
        for metric in METRIC_NAME.findall(inner):
            yield metric, labels


def settings_fields() -> set[str]:
    return {f"FOREWARN_{name.upper()}" for name in Settings.model_fields}


def assert_valid_settings(where: str, env: dict[str, str]) -> None:
    forewarn = {k: str(v) for k, v in env.items() if k.startswith("FOREWARN_")}
    unknown = set(forewarn) - settings_fields() - ANNOUNCED_SETTINGS
    assert not unknown, f"{where}: settings Forewarn does not read: {sorted(unknown)}"
    values = {
        k.removeprefix("FOREWARN_").lower(): v
        for k, v in forewarn.items()
        if k not in ANNOUNCED_SETTINGS and v != ""
    }
    Settings(**values)  # raises with the field's name on a value Forewarn would refuse


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in load_yaml(path)]


def deployments() -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc.get("kind") == "Deployment"]


# --------------------------------------------------------------------------- parsing


YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])


def test_deploy_directory_has_what_operations_need() -> None:
    for relative in (
        "Dockerfile",
        "compose.yaml",
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "prometheus/alerts.test.yml",
        "grafana/dashboards/forewarn.json",
        "k8s/kustomization.yaml",
    ):
        assert (DEPLOY / relative).is_file(), f"deploy/{relative} is missing"
    assert len(YAML_FILES) >= 10


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    documents = load_yaml(path)
    assert documents, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in documents), f"{path}: a document is not a map"


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    panels = list(dashboard_panels())
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    graphs = [panel for panel in panels if panel["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
    # The provisioned datasource is the dashboard's default.
    datasource = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")[0]
    uid = datasource["datasources"][0]["uid"]
    variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] == uid


def test_dashboard_covers_the_operational_questions() -> None:
    exprs = " ".join(expr for where, expr in queries() if where.startswith("panel"))
    for needle in (
        "forewarn_events_consumed_total",
        "forewarn_dlq_writes_total",
        "forewarn_consumer_lag_messages",
        "histogram_quantile(0.5, sum by (le) (rate(forewarn_detection_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(forewarn_detection_latency_seconds_bucket",
        "forewarn_lead_time_seconds_bucket",
        "forewarn_outages",
        "sum by (channel) (rate(forewarn_notifications_sent_total",
        "forewarn_notifications_failed_total",
        "forewarn_outbox_pending",
        "forewarn_outbox_oldest_pending_seconds",
        "forewarn_provider_request_seconds_bucket",
    ):
        assert needle in exprs, f"no dashboard panel queries {needle}"


# --------------------------------------------------------------------------- metrics


def test_metrics_are_read_from_the_code() -> None:
    code = metrics_in_code()
    # A sanity anchor: if this fails, the collector (not the deploy files) is broken.
    assert code["forewarn_events_consumed_total"].kind == "Counter"
    assert "topic" in code["forewarn_events_consumed_total"].labels
    assert code["forewarn_outbox_pending"].kind == "Gauge"


def test_announced_metrics_keep_their_announced_type() -> None:
    # Once the code defines an announced name, its real labels are what the label test uses.
    code = metrics_in_code()
    for name, (kind, _labels) in ANNOUNCED_METRICS.items():
        if name in code:
            assert code[name].kind == kind, f"{name} is a {code[name].kind} in the code"


def metric_problems(expr: str, known: dict[str, Metric]) -> list[str]:
    return [f"unknown metric {name}" for name in METRIC_NAME.findall(expr) if name not in known]


def label_problems(expr: str, known: dict[str, Metric]) -> list[str]:
    problems = []
    for series, labels in label_uses(expr):
        metric = known.get(series)
        if metric is None:
            continue  # reported by metric_problems
        missing = labels - metric.labels - TARGET_LABELS
        if missing:
            problems.append(
                f"{series} has no label {sorted(missing)} (labels: {sorted(metric.labels)})"
            )
    return problems


@pytest.mark.parametrize("where_expr", queries(), ids=lambda q: q[0])
def test_every_queried_metric_exists_in_the_code(where_expr: tuple[str, str]) -> None:
    where, expr = where_expr
    problems = metric_problems(expr, known_metrics())
    assert not problems, (
        f"{where}: {problems}; no Counter/Gauge/Histogram under "
        f"{', '.join(METRIC_SOURCES)}/ exposes these names"
    )


@pytest.mark.parametrize("where_expr", queries(), ids=lambda q: q[0])
def test_every_queried_label_exists_on_its_metric(where_expr: tuple[str, str]) -> None:
    where, expr = where_expr
    problems = label_problems(expr, known_metrics())
    assert not problems, f"{where}: {problems}"


def test_the_checks_catch_wrong_names_and_labels() -> None:
    known = known_metrics()
    assert metric_problems("rate(forewarn_consumer_lag[5m])", known) == [
        "unknown metric forewarn_consumer_lag"
    ]
    # A histogram is queried by its series, never by its bare name.
    assert metric_problems("forewarn_detection_latency_seconds", known)
    assert not metric_problems("forewarn_detection_latency_seconds_bucket", known)
    assert label_problems('forewarn_outbox_pending{stage="x"}', known)
    assert label_problems("sum by (channel) (forewarn_dlq_writes_total)", known)
    assert not label_problems("sum by (topic, instance) (forewarn_dlq_writes_total)", known)


# --------------------------------------------------------------------------- alerts


REQUIRED_ALERTS = {
    "ForewarnConsumerLagGrowing": "forewarn_consumer_lag_messages",
    "ForewarnDeadLetterRate": "forewarn_dlq_writes_total",
    "ForewarnOutboxBacklogOld": "forewarn_outbox_oldest_pending_seconds",
    "ForewarnNotificationFailureRatio": "forewarn_notifications_failed_total",
    "ForewarnDetectorNoPartitions": "forewarn_assigned_partitions",
    "ForewarnUpdatePromiseBroken": "forewarn_update_overdue_outages",
}


def test_required_alerts_exist() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name, metric in REQUIRED_ALERTS.items():
        assert name in rules, f"alert {name} is missing"
        assert metric in rules[name]["expr"]
    assert "== 0" in rules["ForewarnDetectorNoPartitions"]["expr"]
    assert "> 0" in rules["ForewarnUpdatePromiseBroken"]["expr"]


def test_every_alert_has_severity_annotations_and_a_runbook_section() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    headings = {
        github_anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip()
        runbook = annotations["runbook_url"]
        assert runbook.startswith("docs/operations.md#"), runbook
        anchor = runbook.partition("#")[2]
        assert anchor == github_anchor(rule["alert"])
        assert anchor in headings, f"docs/operations.md has no section for {rule['alert']}"


def test_prometheus_operator_rules_match_alerts_yml() -> None:
    rule = next(
        doc for doc in load_yaml(K8S / "monitoring.yaml") if doc["kind"] == "PrometheusRule"
    )
    assert rule["spec"]["groups"] == load_yaml(ALERTS)[0]["groups"], (
        "deploy/k8s/monitoring.yaml's PrometheusRule differs from deploy/prometheus/alerts.yml"
    )


def test_prometheus_scrapes_every_component_on_its_port() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")[0]
    assert config["rule_files"] == ["alerts.yml"]
    targets: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[name] = sd["port"]
    assert targets == {"api": 8000, "detector": 9100, "planner": 9100, "notifier": 9100}


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus); "
    "the Prometheus config and rules are only parsed as YAML",
)


def promtool(*args: str) -> None:
    assert PROMTOOL is not None
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own files
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    promtool("check", "rules", str(ALERTS.relative_to(ROOT)))


@needs_promtool
def test_promtool_checks_the_config() -> None:
    promtool("check", "config", str((PROMETHEUS / "prometheus.yml").relative_to(ROOT)))


@needs_promtool
def test_promtool_runs_the_alert_unit_tests() -> None:
    promtool("test", "rules", str((PROMETHEUS / "alerts.test.yml").relative_to(ROOT)))


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    # promtool has no bare PromQL check offline; as recording rules it parses each query.
    rules = []
    for index, (where, expr) in enumerate(q for q in queries() if q[0].startswith("panel")):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr!r}"
        rules.append({"record": f"forewarn:dashboard_query:{index}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path))


# --------------------------------------------------------------------------- image


def final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines()]
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[start:]


def test_image_runs_forewarn_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    stage = final_stage(text)
    users = [line.split(None, 1)[1] for line in stage if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"the image runs as {users[-1]}"
    assert 'ENTRYPOINT ["forewarn"]' in stage
    assert 'CMD ["all"]' in stage
    exposed = {p for line in stage if line.startswith("EXPOSE ") for p in line.split()[1:]}
    assert {"8000", "9100"} <= exposed
    assert any(line.upper().startswith("FROM PYTHON") or "PYTHON_IMAGE" in line for line in stage)
    assert "python:3.11-slim" in text
    # Kubernetes' runAsUser matches the image's numeric user.
    for doc in deployments():
        assert str(doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == user


# --------------------------------------------------------------------------- compose


def test_compose_runs_migrations_once_before_the_components() -> None:
    compose = load_yaml(COMPOSE)[0]
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for component in COMPONENTS:
        service = services[component]
        assert service["command"] == [component]
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", component
        assert "healthcheck" in service, f"{component} has no healthcheck"
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for volume in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (DEPLOY / source).exists(), f"compose mounts missing {source}"


def test_compose_settings_are_valid() -> None:
    services = load_yaml(COMPOSE)[0]["services"]
    for name in ("migrate", *COMPONENTS):
        env = services[name]["environment"]
        assert env["FOREWARN_API_HOST"] == "0.0.0.0"  # noqa: S104 - in a container, on purpose
        assert env["FOREWARN_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert_valid_settings(f"compose service {name}", env)


# --------------------------------------------------------------------------- kubernetes


def container_ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def test_every_deployment_has_probes_resources_and_scrape_annotations() -> None:
    found = {doc["metadata"]["name"]: doc for doc in deployments()}
    assert set(found) == {f"forewarn-{c}" for c in COMPONENTS}
    for name, doc in found.items():
        template = doc["spec"]["template"]
        containers = template["spec"]["containers"]
        for container in containers:
            ports = container_ports(container)
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                assert probe in container, f"{name}/{container['name']} has no {probe}"
                get = container[probe]["httpGet"]
                assert get["path"] == path, f"{name} {probe} probes {get['path']}"
                port = get["port"]
                assert port in ports or port in ports.values(), f"{name} {probe} port {port}"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= resources.get("requests", {}).keys(), name
            assert "memory" in resources.get("limits", {}), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        all_ports = {p for c in containers for p in container_ports(c).values()}
        expected = 8000 if name == "forewarn-api" else 9100
        assert int(annotations["prometheus.io/port"]) == expected
        assert expected in all_ports
        assert containers[0]["args"] == [name.removeprefix("forewarn-")]
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()


def test_api_service_selects_the_api_pods() -> None:
    services = [doc for _, doc in k8s_documents() if doc.get("kind") == "Service"]
    api = next(s for s in services if s["metadata"]["name"] == "forewarn-api")
    deployment = next(d for d in deployments() if d["metadata"]["name"] == "forewarn-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert api["spec"]["selector"].items() <= labels.items()
    ports = container_ports(deployment["spec"]["template"]["spec"]["containers"][0])
    for port in api["spec"]["ports"]:
        assert port["targetPort"] in ports or port["targetPort"] in ports.values()


def test_migration_job_runs_db_upgrade() -> None:
    jobs = [doc for _, doc in k8s_documents() if doc.get("kind") == "Job"]
    assert len(jobs) == 1
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["db", "upgrade"]
    assert "resources" in container


def test_kustomization_lists_existing_files_but_never_the_example_secret() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")[0]
    resources = kustomization["resources"]
    for resource in resources:
        assert (K8S / resource).is_file(), f"kustomization lists missing {resource}"
    assert "secret.example.yaml" not in resources
    listed = set(resources) | {"kustomization.yaml", "secret.example.yaml", "monitoring.yaml"}
    unlisted = {p.name for p in K8S.glob("*.yaml")} - listed
    assert not unlisted, f"manifests not in kustomization.yaml: {sorted(unlisted)}"


def test_example_secret_holds_only_marked_placeholders() -> None:
    secret = load_yaml(K8S / "secret.example.yaml")[0]
    assert secret["kind"] == "Secret"
    for key, value in secret["stringData"].items():
        if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET", "DATABASE_URL")):
            assert "CHANGE-ME" in value, f"{key} in the example secret is not a marked placeholder"


def test_kubernetes_settings_are_valid() -> None:
    config = next(doc for _, doc in k8s_documents() if doc.get("kind") == "ConfigMap")
    secret = load_yaml(K8S / "secret.example.yaml")[0]
    assert not set(config["data"]) & set(secret["stringData"]), "a setting is set twice"
    assert_valid_settings("deploy/k8s", {**config["data"], **secret["stringData"]})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kustomize_renders_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own files
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == 4 and "Job" in kinds and "Namespace" in kinds
    for doc in yaml.safe_load_all(result.stdout):
        if doc and doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "forewarn"
