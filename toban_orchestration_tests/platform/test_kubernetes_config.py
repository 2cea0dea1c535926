"""The Kubernetes configuration in deploy/kubernetes/ is one that Dagster and the dagster/dagster
Helm chart accept, and it runs the same code with the same limits as the project's dagster.yaml.

No cluster, Helm or Docker runs here. What is checked instead:
- dagster-instance.yaml passes Dagster's instance schema, and a DagsterInstance built from it
  (dagster-k8s installed, a real PostgreSQL) has a K8sRunLauncher, the run queue's limits and
  working run storage;
- values.yaml uses only keys of the chart's schema, the instance the chart renders from it says
  the same as dagster-instance.yaml, and its storage settings reach a real PostgreSQL;
- the image, command and environment refer to things that exist, and no secret is written down;
- events-receiver.yaml runs `toban events` from the project's image with its secrets from Secrets
  by key, and its probes ask a path the receiver really serves.
"""

import http.client
import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from dagster_shared.yaml_utils import dump_run_config_yaml, safe_load_yaml
from packaging.specifiers import SpecifierSet
from pydantic import SecretStr
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from toban_orchestration.cli import _db_upgrade, _events, build_parser
from toban_orchestration.db.engine import DAGSTER_DRIVER
from toban_orchestration.defs.platform.executor import StepExecutorError, step_executor
from toban_orchestration.settings import PROJECT_ROOT, Settings
from toban_orchestration.slack.receiver import HEALTH_PATH, EventReceiver, ReceiverConfig

DEPLOY = PROJECT_ROOT / "deploy" / "kubernetes"
APP_SECRET = "toban-env"
# Settings that hold credentials: only ever in the Secret, never in a file of deploy/.
SECRET_SETTINGS = {
    "TOBAN_DATABASE_URL",
    "TOBAN_DAGSTER_STORAGE_URL",
    "TOBAN_ENCRYPTION_KEYS",
    "TOBAN_LLM_API_KEY",
    "TOBAN_SLACK_APP_TOKEN",
    "TOBAN_SLACK_SIGNING_SECRET",
}
EVENTS_SECRET = "toban-slack-events"
"""The Slack app's secrets, for the event receiver only (the runs never need them)."""
WORKSPACE_PARTITIONS = "slack_workspace"


def _load(path: Path) -> dict[str, Any]:
    loaded = safe_load_yaml(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def _instance_yaml() -> dict[str, Any]:
    return _load(DEPLOY / "dagster-instance.yaml")


def _values() -> dict[str, Any]:
    return _load(DEPLOY / "values.yaml")


def _workspace_module() -> str:
    (location,) = _load(PROJECT_ROOT / "workspace.yaml")["load_from"]
    module = location["python_module"]["module_name"]
    assert isinstance(module, str)
    return module


# --------------------------------------------------------------------------------------------
# The chart, as far as this project uses it. Keys from the chart's schema models
# (dagster-io/dagster, helm/dagster/schema/schema/charts/dagster/values.py and subschema/*.py,
# dagster_user_deployments/subschema/user_deployments.py; `concurrency` from
# subschema/concurrency.py, chart 1.12 and later). A dict lists the keys allowed at that level,
# a one-item list describes every item of a list, None is free-form content (env maps,
# Kubernetes resources, ...).
# --------------------------------------------------------------------------------------------
Spec = dict[str, Any] | list[Any] | None


def _free(names: str) -> dict[str, None]:
    return dict.fromkeys(names.split())


_IMAGE = _free("repository tag pullPolicy")
_SECRET_REF = _free("name optional")
_POD = _free(
    "annotations nodeSelector affinity tolerations podSecurityContext securityContext resources "
    "livenessProbe readinessProbe startupProbe labels deploymentLabels volumeMounts volumes "
    "schedulerName env envConfigMaps"
)
_TAG_LIMIT = _free("key value limit")
CHART_KEYS: dict[str, Spec] = {
    "dagsterWebserver": {
        **_POD,
        **_free(
            "replicaCount nameOverride pathPrefix service workspace enableReadOnly "
            "dbStatementTimeout dbPoolRecycle logLevel"
        ),
        "image": _IMAGE,
        "envSecrets": [_SECRET_REF],
    },
    "dagster-user-deployments": {
        **_free("enabled enableSubchart imagePullSecrets"),
        "deployments": [
            {
                **_POD,
                **_free(
                    "name dagsterApiGrpcArgs codeServerArgs port deploymentNamespace "
                    "initContainers sidecarContainers deploymentStrategy"
                ),
                "image": _IMAGE,
                "envSecrets": [_SECRET_REF],
                "includeConfigInLaunchedRuns": _free("enabled"),
            }
        ],
    },
    "postgresql": {
        **_free(
            "image enabled postgresqlHost postgresqlUsername postgresqlPassword "
            "postgresqlDatabase postgresqlParams postgresqlScheme"
        ),
        "service": _free("port"),
    },
    "global": _free("postgresqlSecretName dagsterHome serviceAccountName celeryConfigSecretName"),
    "runLauncher": {
        "type": None,
        "config": {
            "k8sRunLauncher": {
                **_free(
                    "image imagePullPolicy jobNamespace loadInclusterConfig kubeconfigFile "
                    "envConfigMaps envVars volumeMounts volumes labels failPodOnRunFailure "
                    "resources schedulerName securityContext runK8sConfig"
                ),
                "envSecrets": [_SECRET_REF],
            },
            "celeryK8sRunLauncher": None,
            "customRunLauncher": None,
        },
    },
    "dagsterDaemon": {
        **_POD,
        **_free("enabled image heartbeatTolerance runRetries runMonitoring sensors schedules"),
        "envSecrets": [_SECRET_REF],
        "runCoordinator": {
            "enabled": None,
            "type": None,
            "config": {
                "queuedRunCoordinator": {
                    **_free(
                        "maxConcurrentRuns dequeueIntervalSeconds dequeueNumWorkers "
                        "dequeueUseThreads blockOpConcurrencyLimitedRuns"
                    ),
                    "tagConcurrencyLimits": [_TAG_LIMIT],
                },
                "customRunCoordinator": None,
            },
        },
    },
    "concurrency": {
        "enabled": None,
        "pools": _free("defaultLimit granularity opGranularityRunBuffer"),
        "runs": {"maxConcurrentRuns": None, "tagConcurrencyLimits": [_TAG_LIMIT]},
    },
    "telemetry": _free("enabled"),
    "migrate": _free("enabled"),
    **_free(
        "generatePostgresqlPasswordSecret generateCeleryConfigSecret rabbitmq redis flower "
        "ingress imagePullSecrets computeLogManager scheduler pythonLogs busybox serviceAccount "
        "retention additionalInstanceConfig"
    ),
}


def _unknown_keys(value: Any, spec: Spec, path: str = "") -> Iterator[str]:
    if spec is None:
        return
    if isinstance(spec, list):
        assert isinstance(value, list), f"{path} must be a list"
        for index, item in enumerate(value):
            yield from _unknown_keys(item, spec[0], f"{path}[{index}]")
        return
    assert isinstance(value, dict), f"{path} must be a mapping"
    for key, item in value.items():
        if key not in spec:
            yield f"{path}.{key}".lstrip(".")
        else:
            yield from _unknown_keys(item, spec[key], f"{path}.{key}")


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def chart_instance_config(values: Mapping[str, Any], release: str = "toban") -> dict[str, Any]:
    """The dagster.yaml that the chart renders from `values`, for the parts this project sets:
    a transcription of templates/configmap-instance.yaml and templates/helpers/instance/*.tpl
    (storage, run launcher, run coordinator, concurrency, run retries and monitoring,
    telemetry). Not the chart itself: it shows what Dagster makes of our values."""
    postgresql = values["postgresql"]
    postgres_db: dict[str, Any] = {
        "username": postgresql["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": postgresql["postgresqlHost"],
        "db_name": postgresql["postgresqlDatabase"],
        "port": postgresql["service"]["port"],
        "params": postgresql.get("postgresqlParams") or {},
    }
    if postgresql.get("postgresqlScheme"):
        postgres_db["scheme"] = postgresql["postgresqlScheme"]
    storage = {"postgres_db": postgres_db}

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher_config: dict[str, Any] = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace") or release,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": f"{release}-dagster",
        "dagster_home": values.get("global", {}).get("dagsterHome", "/opt/dagster/dagster_home"),
        "instance_config_map": f"{release}-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if launcher.get("envSecrets"):
        launcher_config["env_secrets"] = [secret["name"] for secret in launcher["envSecrets"]]
    if launcher.get("resources"):
        launcher_config["resources"] = launcher["resources"]

    daemon = values["dagsterDaemon"]
    coordinator: dict[str, Any] = {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
    }
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"] or {}
    if any(value is not None for value in queued.values()):
        coordinator["config"] = {_camel_to_snake(key): value for key, value in queued.items()}

    config: dict[str, Any] = {
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": storage,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": storage,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": storage,
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": launcher_config,
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    if daemon["enabled"] and daemon["runCoordinator"]["enabled"]:
        config["run_coordinator"] = coordinator
    concurrency = values.get("concurrency", {})
    if concurrency.get("enabled"):
        pools, runs = concurrency.get("pools", {}), concurrency.get("runs", {})
        config["concurrency"] = {
            "pools": {_camel_to_snake(key): value for key, value in pools.items()},
            "runs": {
                "max_concurrent_runs": runs["maxConcurrentRuns"],
                "tag_concurrency_limits": runs["tagConcurrencyLimits"],
            },
        }
    if daemon["enabled"] and daemon["runRetries"]["enabled"]:
        config["run_retries"] = {"enabled": True, "max_retries": daemon["runRetries"]["maxRetries"]}
    monitoring = daemon.get("runMonitoring", {})
    if daemon["enabled"] and monitoring.get("enabled"):
        config["run_monitoring"] = {
            _camel_to_snake(key): value for key, value in monitoring.items()
        }
    return config


# --------------------------------------------------------------------------------------------
# Building instances outside a cluster
# --------------------------------------------------------------------------------------------
def _outside_the_cluster(config: Mapping[str, Any], tmp_path: Path) -> dict[str, Any]:
    """`config` with the one change a test outside Kubernetes needs: the run launcher reads a
    kubeconfig file (whose server is never contacted) instead of the pod's service account."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        dump_run_config_yaml(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {"token": "not-a-token"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    launcher_config = dict(config["run_launcher"]["config"])
    assert launcher_config["load_incluster_config"] is True
    launcher_config.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    return {**config, "run_launcher": {**config["run_launcher"], "config": launcher_config}}


def _instance_home(config: Mapping[str, Any], tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(dump_run_config_yaml(config, sort_keys=False))
    return home


def _launcher_schema() -> Any:
    return K8sRunLauncher.config_type()  # type: ignore[no-untyped-call]  # dagster-k8s is untyped


def _dagster_url(database: URL) -> str:
    return database.set(drivername=DAGSTER_DRIVER).render_as_string(hide_password=False)


def _assert_runs_on_kubernetes_with_the_projects_limits(
    instance: dg.DagsterInstance, namespace: str
) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.env_secrets == [APP_SECRET]
    assert launcher.job_namespace == namespace
    assert launcher.dagster_home == "/opt/dagster/dagster_home"
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    concurrency = instance.get_concurrency_config()
    assert concurrency.run_queue_config is not None
    assert concurrency.run_queue_config.max_concurrent_runs == 4
    assert {
        (limit["key"], limit["limit"], limit["value"]["applyLimitPerUniqueValue"])
        for limit in concurrency.run_queue_config.tag_concurrency_limits
    } == {("dagster/partition/workspace", 1, True), ("slack_workspace", 1, True)}
    assert concurrency.pool_config.default_pool_limit == 2
    assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
    assert instance.run_monitoring_enabled
    assert not instance.telemetry_enabled
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    # Writes and reads through Dagster's storage. An event write is where dagster-postgres fails
    # when the URL's driver is psycopg 3 (its NOTIFY), so one is made.
    instance.add_dynamic_partitions(WORKSPACE_PARTITIONS, ["T0K8S"])
    assert instance.get_dynamic_partitions(WORKSPACE_PARTITIONS) == ["T0K8S"]
    instance.report_runless_asset_event(dg.AssetMaterialization("kubernetes_config_check"))
    key = dg.AssetKey("kubernetes_config_check")
    assert instance.get_latest_materialization_event(key) is not None


# --------------------------------------------------------------------------------------------
# dagster-instance.yaml
# --------------------------------------------------------------------------------------------
def test_instance_yaml_passes_dagsters_instance_and_run_launcher_schemas(tmp_path: Path) -> None:
    home = _instance_home(_instance_yaml(), tmp_path)
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = validate_config(_launcher_schema(), launcher["config"])
    assert checked.success, checked.errors
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "TOBAN_DAGSTER_STORAGE_URL"}}}


def test_instance_yaml_keeps_the_projects_limits_and_storage() -> None:
    local, kubernetes = _load(PROJECT_ROOT / "dagster.yaml"), _instance_yaml()
    for section in ("storage", "concurrency", "run_retries", "telemetry"):
        assert kubernetes[section] == local[section], section


def test_instance_yaml_builds_an_instance_on_postgres_with_the_k8s_run_launcher(
    empty_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOBAN_DAGSTER_STORAGE_URL", _dagster_url(empty_database))
    home = _instance_home(_outside_the_cluster(_instance_yaml(), tmp_path), tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _assert_runs_on_kubernetes_with_the_projects_limits(instance, namespace="toban")
        launcher = instance.run_launcher
        assert isinstance(launcher, K8sRunLauncher)
        assert launcher.instance_config_map == "toban-dagster-instance"
        assert launcher.service_account_name == "toban-dagster"


# --------------------------------------------------------------------------------------------
# values.yaml (the Helm chart)
# --------------------------------------------------------------------------------------------
def test_values_use_only_keys_of_the_charts_schema() -> None:
    values = _values()
    assert list(_unknown_keys(values, CHART_KEYS)) == []
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["postgresql"]["enabled"] is False
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["pullPolicy"] in {"Always", "IfNotPresent", "Never"}
    assert isinstance(deployment["port"], int)


def test_unknown_keys_are_found() -> None:
    # The check above must be able to fail: a misspelt key and a key at the wrong level.
    values = _values()
    values["runLauncher"]["config"]["k8sRunLauncher"]["envSecret"] = []
    values["concurrency"]["runs"]["defaultLimit"] = 2
    assert sorted(_unknown_keys(values, CHART_KEYS)) == [
        "concurrency.runs.defaultLimit",
        "runLauncher.config.k8sRunLauncher.envSecret",
    ]


def test_chart_renders_the_instance_of_dagster_instance_yaml(tmp_path: Path) -> None:
    rendered, kubernetes = chart_instance_config(_values()), _instance_yaml()
    config, _ = dagster_instance_config(str(_instance_home(rendered, tmp_path)))
    for section in ("concurrency", "run_retries", "run_monitoring", "telemetry"):
        assert config[section] == kubernetes[section], section
    assert "config" not in config["run_coordinator"]  # limits in `concurrency` only
    assert config["run_coordinator"]["class"] == kubernetes["run_coordinator"]["class"]
    ours, theirs = config["run_launcher"]["config"], kubernetes["run_launcher"]["config"]
    for key in ("env_secrets", "resources", "image_pull_policy", "dagster_home"):
        assert ours[key] == theirs[key], key
    checked = validate_config(_launcher_schema(), ours)
    assert checked.success, checked.errors
    assert config["run_storage"]["config"]["postgres_db"]["scheme"] == DAGSTER_DRIVER


def test_chart_storage_settings_reach_postgres(
    empty_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _values()
    # Only where the server is changes (the test's server instead of postgres.example.internal):
    # the scheme, the password's Secret variable and the rest stay as values.yaml has them.
    values["postgresql"].update(
        postgresqlHost=empty_database.host or "",
        postgresqlUsername=empty_database.username or "",
        postgresqlDatabase=empty_database.database,
        postgresqlParams={**values["postgresql"]["postgresqlParams"], **empty_database.query},
        service={"port": empty_database.port or 5432},
    )
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", empty_database.password or "")
    rendered = _outside_the_cluster(chart_instance_config(values, release="toban"), tmp_path)
    home = _instance_home(rendered, tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _assert_runs_on_kubernetes_with_the_projects_limits(instance, namespace="toban")


def test_code_server_serves_the_projects_definitions() -> None:
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    flag, module = deployment["dagsterApiGrpcArgs"]
    assert flag == "-m"
    assert module == _workspace_module()
    definitions = [
        value
        for value in vars(importlib.import_module(module)).values()
        if isinstance(value, dg.Definitions)
    ]
    assert len(definitions) == 1
    assert definitions[0].resolve_job_def("slack_messages_job") is not None


def test_code_server_and_runs_get_the_app_settings_from_the_secret_only() -> None:
    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert [secret["name"] for secret in deployment["envSecrets"]] == [APP_SECRET]
    assert [secret["name"] for secret in launcher["envSecrets"]] == [APP_SECRET]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert not SECRET_SETTINGS & set(deployment.get("env", {}))
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]
    job = _load(DEPLOY / "db-upgrade-job.yaml")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": APP_SECRET}}]
    assert "env" not in container


def test_no_file_of_deploy_holds_a_credential() -> None:
    credentials_in_url = re.compile(r"://[^/\s:@]+:[^@\s/]+@")
    literal_secret = re.compile(
        r"^\s*(?:ENV\s+)?(" + "|".join(sorted(SECRET_SETTINGS)) + r")\s*[:=]\s*\S", re.MULTILINE
    )
    # README.md shows placeholders (`<password>`) on purpose; the configuration must not.
    for path in sorted(DEPLOY.iterdir()):
        if path.suffix == ".md":
            continue
        text = path.read_text()
        assert not credentials_in_url.search(text), path.name
        assert not literal_secret.search(text), path.name
    assert literal_secret.search("  TOBAN_LLM_API_KEY: sk-123")  # the pattern can match


def test_db_upgrade_job_runs_an_existing_command_in_the_code_servers_image() -> None:
    job = _load(DEPLOY / "db-upgrade-job.yaml")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    image = deployment["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    program, *arguments = container["command"]
    assert program == "toban"
    assert build_parser().parse_args(arguments).handler is _db_upgrade


# --------------------------------------------------------------------------------------------
# events-receiver.yaml (the Slack Events API receiver)
# --------------------------------------------------------------------------------------------
def _manifests(path: Path) -> dict[str, dict[str, Any]]:
    """The objects of a multi-document manifest, by kind."""
    objects: dict[str, dict[str, Any]] = {}
    for document in re.split(r"^---\s*$", path.read_text(), flags=re.MULTILINE):
        loaded = safe_load_yaml(document)
        if loaded is None:
            continue  # only comments
        assert isinstance(loaded, dict), f"{path.name}: a document is not a mapping"
        assert loaded["kind"] not in objects, f"{path.name}: two {loaded['kind']}s"
        objects[loaded["kind"]] = loaded
    return objects


def _events_receiver() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Deployment, its container, Service) of events-receiver.yaml."""
    objects = _manifests(DEPLOY / "events-receiver.yaml")
    assert set(objects) == {"Deployment", "Service"}
    deployment = objects["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container, objects["Service"]


def test_events_receiver_runs_toban_events_from_the_code_servers_image() -> None:
    deployment, container, _ = _events_receiver()
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["spec"]["replicas"] >= 1
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (code_server,) = _values()["dagster-user-deployments"]["deployments"]
    image = code_server["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    program, *arguments = container["command"]
    assert program == "toban"
    args = build_parser().parse_args(arguments)
    assert args.handler is _events
    # Listening on the pod's address, on the port the container declares; both transports
    # allowed (which ones run depends on the keys of the Secret).
    assert args.host == "0.0.0.0"
    (port,) = container["ports"]
    assert args.port == port["containerPort"]
    assert (args.no_http, args.no_socket_mode) == (False, False)


def test_events_receiver_gets_each_setting_from_a_secret_by_key() -> None:
    _, container, _ = _events_receiver()
    assert "envFrom" not in container  # only the keys it needs, not all of `toban-env`
    sources = {}
    for variable in container["env"]:
        assert "value" not in variable, variable["name"]
        reference = variable["valueFrom"]["secretKeyRef"]
        assert reference["key"] == variable["name"]
        sources[variable["name"]] = (reference["name"], reference.get("optional", False))
    assert sources == {
        # Either transport may be left out; `toban events` refuses to run with neither.
        "TOBAN_SLACK_APP_TOKEN": (EVENTS_SECRET, True),
        "TOBAN_SLACK_SIGNING_SECRET": (EVENTS_SECRET, True),
        "TOBAN_DATABASE_URL": (APP_SECRET, False),
        "TOBAN_DAGSTER_STORAGE_URL": (APP_SECRET, False),
    }
    settings = {f"TOBAN_{name.upper()}" for name in Settings.model_fields}
    assert set(sources) <= settings  # no misspelt variable


def test_events_receiver_probes_a_path_it_serves_through_its_service() -> None:
    deployment, container, service = _events_receiver()
    (port,) = container["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (HEALTH_PATH, port["name"]), probe
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]

    # The path is the receiver's: asked as the kubelet asks it, it answers 200. (Health never
    # touches the database, so this engine never connects.)
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/unused")
    config = ReceiverConfig(signing_secret=SecretStr("s"), http_listener=True, port=0)
    with EventReceiver(engine, config) as receiver:
        address = receiver.http_address
        assert address is not None
        connection = http.client.HTTPConnection(*address, timeout=5)
        connection.request("GET", container["livenessProbe"]["httpGet"]["path"])
        assert connection.getresponse().status == 200
        connection.close()


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------
def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for keyword, rest in _dockerfile_instructions():
        if keyword == "COPY":
            *sources, _ = shlex.split(rest)
            copied += [source for source in sources if not source.startswith("--")]
    assert {"pyproject.toml", "uv.lock", "README.md", "toban_orchestration", "migrations"} <= set(
        copied
    )
    for source in copied:
        assert (PROJECT_ROOT / source).exists(), source
        assert not any(fnmatch(source, pattern) for pattern in ignored), source


def test_dockerfile_installs_the_lock_and_serves_the_workspace_module() -> None:
    instructions = _dockerfile_instructions()
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    syncs = [index for index, run in enumerate(runs) if "uv sync --frozen --no-dev" in run]
    assert syncs, "the image must install uv.lock with `uv sync --frozen --no-dev`"
    k8s = [index for index, run in enumerate(runs) if "dagster-k8s" in run]
    assert k8s, "the image must install dagster-k8s"
    assert k8s[0] > syncs[-1], "dagster-k8s must come after the last `uv sync`"
    assert all("uv run" not in run for run in runs)

    (base,) = [rest for keyword, rest in instructions if keyword == "FROM"]
    python = re.fullmatch(r"python:(\d+\.\d+)[\w.-]*", base)
    assert python is not None, base
    requires = _load_toml_requires_python()
    assert SpecifierSet(requires).contains(f"{python.group(1)}.0"), (base, requires)

    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    command = json.loads(cmd)  # the exec form is a JSON array
    assert command[:3] == ["dagster", "api", "grpc"]
    assert command[command.index("-m") + 1] == _workspace_module()


def _load_toml_requires_python() -> str:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requires = project["requires-python"]
    assert isinstance(requires, str)
    return requires


# --------------------------------------------------------------------------------------------
# Steps in pods of their own (opt-in)
# --------------------------------------------------------------------------------------------
def test_steps_run_in_the_runs_process_unless_k8s_is_chosen() -> None:
    assert step_executor(None) is dg.in_process_executor
    assert step_executor("default") is dg.in_process_executor
    with pytest.raises(StepExecutorError, match="TOBAN_DAGSTER_EXECUTOR is 'celery'"):
        step_executor("celery")


def test_k8s_step_executor_applies_to_every_job_of_the_projects_definitions() -> None:
    from toban_orchestration.definitions import defs

    executor = step_executor("k8s")
    assert executor is not None
    per_step = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=defs.sensors,
        schedules=defs.schedules,
        resources=defs.resources,
        executor=executor,
    )
    names = ["slack_messages_job", "slack_workspace_snapshot_job", "slack_analysis_job"]
    assert {per_step.resolve_job_def(name).executor_def.name for name in names} == {"k8s"}
    # Without a choice, every job runs its steps in the run's own process.
    assert {defs.resolve_job_def(name).executor_def.name for name in names} == {"in_process"}
