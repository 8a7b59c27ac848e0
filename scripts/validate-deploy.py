"""The checks of scripts/validate-deploy (run that: it installs the pinned tools and calls this).

1. deploy/kubernetes/*.yaml: every object against the Kubernetes OpenAPI schemas bundled in
   kubernetes-validate (strict: unknown fields fail; no download at run time), and what the
   schemas cannot see: kustomization.yaml lists every manifest, selectors match the pods,
   references (ConfigMap, headless Service) resolve, enableServiceLinks is off.
2. deploy/compose/compose.yaml against the Compose specification's JSON schema, vendored as
   scripts/compose-spec.json (compose-spec/compose-spec, schema/compose-spec.json at commit
   170098ba07d9f53c383a41bfd4c5166b0a4529a6; Apache-2.0, scripts/compose-spec.NOTICE), and
   that its build contexts, Dockerfiles, the files those COPY, volumes and dependencies exist.
3. The Rezef configuration in them (the ConfigMap's rezef.toml, deploy/container.toml, REZEF_
   variables): known keys of the right types. Known keys are those of deploy/rezef.toml (the
   documented example, which the config tests load) and the cluster settings below.
"""

import argparse
import json
import re
import shlex
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml
from kubernetes_validate import utils as kv
from kubernetes_validate.version import __version__ as kv_version

# The cluster and key settings (docs/scale-out.md, docs/security.md), with a check of their
# values. deploy/rezef.toml adds the rest of the vocabulary.
CLUSTER_KEYS = {
    "listen": "address",
    "data_dir": "string",
    "log.backend": "backend",
    "log.kafka.brokers": "string",
    "log.kafka.topic": "string",
    "log.kafka.partitions": "positive",
    "log.kafka.replication": "positive",
    "log.kafka.request_timeout_ms": "positive",
    "log.kafka.group": "string",
    "log.kafka.session_timeout_ms": "positive",
    "log.kafka.security_protocol": "security_protocol",
    "cluster.node_id": "string",
    "cluster.advertise_url": "url",
    # Commented out in deploy/rezef.toml: they have no value that fits every machine.
    "auth.keys_file": "string",
    "auth.node_key": "string",
    # The Kafka log's TLS and SASL settings (docs/security.md, "Kafka: TLS and SASL").
    "log.kafka.ssl_ca_file": "string",
    "log.kafka.ssl_cert_file": "string",
    "log.kafka.ssl_key_file": "string",
    "log.kafka.ssl_key_password": "string",
    "log.kafka.sasl_mechanism": "sasl_mechanism",
    "log.kafka.sasl_username": "string",
    "log.kafka.sasl_password": "string",
    "tls.cert_file": "string",
    "tls.key_file": "string",
    "tls.client_ca_file": "string",
    "tls.peer_ca_file": "string",
}
TLS_FILES = ("tls.cert_file", "tls.key_file", "tls.client_ca_file", "tls.peer_ca_file")
# REZEF_ variables that are not settings (crates/rezef/src/config.rs ignores them): the
# config file's path, the client commands' server and API key.
NOT_SETTINGS = {"REZEF_CONFIG", "REZEF_SERVER", "REZEF_TOKEN"}
# Tables whose keys are the operator's (tenant names, librdkafka properties).
FREE_FORM = ("continuity.tenants.", "log.kafka.librdkafka.")
POD_KINDS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"}

errors: list[str] = []


def fail(where: str, message: str) -> None:
    errors.append(f"{where}: {message}")


def flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Vocabulary:
    def __init__(self, example: Path):
        keys = flatten(tomllib.loads(example.read_text()))
        self.known = set(keys) | set(CLUSTER_KEYS)
        # An empty table in the example (channel_required_assurance = {}) is a map, unless
        # its keys are listed above (`[tls]`, whose settings are all commented out there).
        self.free = FREE_FORM + tuple(
            f"{k}." for k, v in keys.items()
            if v == {} and not any(c.startswith(f"{k}.") for c in CLUSTER_KEYS)
        )

    def check(self, where: str, key: str, value, from_env: bool) -> None:
        if key not in self.known and not key.startswith(self.free):
            fail(where, f"unknown Rezef setting `{key}`")
            return
        kind = CLUSTER_KEYS.get(key)
        if kind is None:
            return
        if from_env and kind == "positive" and isinstance(value, str) and value.isdigit():
            value = int(value)
        ok = {
            "string": isinstance(value, str),
            "address": isinstance(value, str) and re.fullmatch(r".+:\d+", value) is not None,
            "backend": value in ("embedded", "kafka"),
            "security_protocol": value in ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl"),
            "sasl_mechanism": value in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
            "positive": isinstance(value, int) and not isinstance(value, bool) and value > 0,
            "url": isinstance(value, str) and re.match(r"https?://.+:\d+$", value) is not None,
        }[kind]
        if not ok:
            fail(where, f"`{key}` = {value!r} is not a valid {kind}")

    def check_toml(self, where: str, text: str) -> dict:
        try:
            settings = flatten(tomllib.loads(text))
        except tomllib.TOMLDecodeError as e:
            fail(where, f"not TOML: {e}")
            return {}
        for key, value in settings.items():
            self.check(where, key, value, from_env=False)
        return settings

    def check_env(self, where: str, env: dict) -> dict:
        """REZEF_A__B=v is setting a.b (figment: lower-cased, split at __)."""
        settings = {}
        for name, value in env.items():
            if name.startswith("REZEF_") and name not in NOT_SETTINGS:
                key = name.removeprefix("REZEF_").lower().replace("__", ".")
                self.check(f"{where}: {name}", key, value, from_env=True)
                settings[key] = value
        return settings


def require_cluster(where: str, settings: dict) -> None:
    if settings.get("log.backend") != "kafka":
        fail(where, "log.backend is not kafka")
    if not settings.get("log.kafka.brokers"):
        fail(where, "log.kafka.brokers is not set")


def load_yaml(path: Path) -> list:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except yaml.YAMLError as e:
        fail(str(path), f"not YAML: {e}")
        return []


def check_kubernetes(repo: Path, version: str, vocab: Vocabulary) -> int:
    directory = repo / "deploy/kubernetes"
    manifests = sorted(p for p in directory.glob("*.y*ml") if p.stem != "kustomization")
    kustomization = load_yaml(directory / "kustomization.yaml")
    listed = kustomization[0].get("resources", []) if kustomization else []

    def rel(p: Path) -> str:
        return str(p.relative_to(repo))

    for name in sorted(set(listed) - {p.name for p in manifests}):
        fail(rel(directory / "kustomization.yaml"), f"resource {name} does not exist")
    for p in manifests:
        if p.name not in listed:
            fail(rel(directory / "kustomization.yaml"), f"does not list {p.name}")

    objects = []
    for path in manifests:
        for obj in load_yaml(path):
            if not isinstance(obj, dict):
                fail(rel(path), f"not a Kubernetes object: {obj!r:.60}")
                continue
            where = f"{rel(path)}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as e:
                fail(where, f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as e:
                fail(where, e.message)
            objects.append((where, obj))

    by_kind: dict[str, dict] = {}
    for where, obj in objects:
        by_kind.setdefault(obj.get("kind"), {})[obj["metadata"]["name"]] = obj
    pods = []  # (where, labels, pod spec, workload)
    for where, obj in objects:
        if obj.get("kind") in POD_KINDS:
            template = obj["spec"]["template"]
            pods.append((where, template["metadata"].get("labels", {}), template["spec"], obj))
    for where, labels, spec, workload in pods:
        if spec.get("enableServiceLinks") is not False:
            fail(
                where,
                "enableServiceLinks must be false: Kubernetes would set REZEF_* "
                "variables for the Service `rezef`, and rezef refuses unknown ones",
            )
        for volume in spec.get("volumes", []):
            name = volume.get("configMap", {}).get("name")
            if name and name not in by_kind.get("ConfigMap", {}):
                fail(where, f"volume {volume['name']}: no ConfigMap {name}")
        service_name = workload["spec"].get("serviceName")
        if service_name:
            service = by_kind.get("Service", {}).get(service_name)
            if not service or service["spec"].get("clusterIP") != "None":
                fail(where, f"serviceName {service_name} is not a headless Service here")
        for container in spec.get("containers", []):
            env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
            vocab.check_env(f"{where}: container {container['name']}", env)
            url = env.get("REZEF_CLUSTER__ADVERTISE_URL", "")
            if service_name and url and f".{service_name}." not in url:
                fail(where, f"REZEF_CLUSTER__ADVERTISE_URL does not go through {service_name}")
    for where, obj in objects:
        selector = obj.get("spec", {}).get("selector")
        if obj.get("kind") in ("PodDisruptionBudget",) + tuple(POD_KINDS):
            selector = (selector or {}).get("matchLabels")
        elif obj.get("kind") != "Service":
            continue
        if selector and not any(selector.items() <= labels.items() for _, labels, _, _ in pods):
            fail(where, f"selector {selector} matches no pod template here")
    for where, obj in objects:
        if obj.get("kind") == "ConfigMap" and "rezef.toml" in obj.get("data", {}):
            settings = vocab.check_toml(f"{where}: rezef.toml", obj["data"]["rezef.toml"])
            require_cluster(f"{where}: rezef.toml", settings)
            for pod in pods:
                check_tls(pod, settings)
    return len(objects)


def check_tls(pod: tuple, settings: dict) -> None:
    """With `[tls]`, its files come from a Secret mounted whole into the container, the
    nodes advertise https:// URLs, and no probe is the kubelet's gRPC one (plain text)."""
    where, _, spec, _ = pod
    if not settings.get("tls.cert_file"):
        return
    secrets = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
    for container in spec.get("containers", []):
        at = f"{where}: container {container['name']}"
        mounts = [
            m for m in container.get("volumeMounts", [])
            if m["name"] in secrets and "subPath" not in m
        ]
        for key in TLS_FILES:
            path = settings.get(key)
            if path and not any(path.startswith(m["mountPath"].rstrip("/") + "/") for m in mounts):
                fail(at, f"{key} {path} is not in a Secret mounted whole (renewals need that)")
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        url = env.get("REZEF_CLUSTER__ADVERTISE_URL", "")
        if url and not url.startswith("https://"):
            fail(at, "REZEF_CLUSTER__ADVERTISE_URL is not https:// while the port speaks TLS")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if "grpc" in container.get(probe, {}):
                fail(at, f"{probe}: the kubelet's gRPC probe cannot speak TLS")


def dockerfile_sources(dockerfile: Path) -> list[str]:
    """The local sources of COPY and ADD (not those --from another stage)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        args = [a for a in args if not a.startswith("--")]
        sources += [a for a in args[:-1] if "://" not in a]
    return sources


def check_compose(repo: Path, vocab: Vocabulary, name: str, override: bool) -> int:
    """compose.yaml, or an override file given after it (`-f compose.yaml -f NAME`): the
    same checks, except that an override's services need not be whole clusters."""
    path = repo / "deploy/compose" / name
    where = str(path.relative_to(repo))
    docs = load_yaml(path)
    if len(docs) != 1:
        fail(where, "expected one YAML document")
        return 0
    compose = docs[0]
    schema = json.loads((repo / "scripts/compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    for e in sorted(validator.iter_errors(compose), key=lambda e: list(map(str, e.path))):
        fail(where, f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}")
    services = compose.get("services") or {}
    volumes = compose.get("volumes") or {}
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        at = f"{where}: services.{name}"
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict):
            context = (path.parent / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not context.is_dir():
                fail(at, f"build.context {build.get('context')} is not a directory")
            elif not dockerfile.is_file():
                fail(at, f"build.dockerfile {build.get('dockerfile')} does not exist")
            else:
                for source in dockerfile_sources(dockerfile):
                    found = (context / source).exists() or (
                        any(c in source for c in "*?[") and any(context.glob(source))
                    )
                    if not found:
                        fail(at, f"{dockerfile.name} copies {source}, which does not exist")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/", "~")) and source not in volumes:
                fail(at, f"volume {source} is not declared under volumes")
        depends = service.get("depends_on", [])
        for other in depends if isinstance(depends, list) else depends.keys():
            if other not in services:
                fail(at, f"depends_on {other}: no such service")
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        env = {k: str(v) for k, v in env.items()}
        if any(k.startswith("REZEF_") for k in env):
            settings = vocab.check_env(at, env)
            if not override:
                require_cluster(at, settings)
    return len(services)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--kubernetes-version", required=True)
    args = parser.parse_args()
    repo = args.repo
    vocab = Vocabulary(repo / "deploy/rezef.toml")
    vocab.check_toml("deploy/container.toml", (repo / "deploy/container.toml").read_text())

    objects = services = 0
    overrides: list[str] = []
    try:
        objects = check_kubernetes(repo, args.kubernetes_version, vocab)
        services = check_compose(repo, vocab, "compose.yaml", override=False)
        overrides = sorted(p.name for p in (repo / "deploy/compose").glob("compose.*.yaml"))
        for name in overrides:
            check_compose(repo, vocab, name, override=True)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        # A file too broken for the checks after the schemas.
        fail("checks stopped", f"{type(e).__name__}: {e}")
    if errors:
        for error in errors:
            print(f"validate-deploy: {error}", file=sys.stderr)
        print(f"validate-deploy: FAILED, {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"deploy/kubernetes: {objects} objects valid for Kubernetes {args.kubernetes_version} "
        f"(kubernetes-validate {kv_version}, strict); compose.yaml: {services} services valid "
        f"for the Compose specification (with {', '.join(overrides) or 'no overrides'}); "
        f"Rezef settings known"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
