"""Start and stop the real service (`bentoml serve service:Facecheck`) in a subprocess:
used by the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from facecheck.settings import PROJECT_ROOT, Settings
from facecheck.store import Store, open_store

START_TIMEOUT_S = 90
BIND_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningService:
    url: str
    db_path: Path
    process: subprocess.Popen
    log_path: Path
    started_at: float  # time.monotonic() at spawn
    mongodb_uri: str = ""  # the service's store is MongoDB when set, else the SQLite file
    mongodb_db: str = "facecheck"

    def store(self) -> Store:
        """The service's own store, opened the way the service opens it."""
        return open_store(
            Settings(
                db_path=self.db_path,
                mongodb_uri=self.mongodb_uri,
                mongodb_db=self.mongodb_db,
                store_timeout_ms=5000,
            )
        )

    def new_key(self, limit: int | None = None, name: str = "test") -> str:
        store = self.store()
        try:
            return store.create_key(name, limit)[1]
        finally:
            store.close()

    def post(self, endpoint: str, body: object, **kwargs) -> requests.Response:
        return requests.post(f"{self.url}{endpoint}", json=body, timeout=60, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_live(self, timeout_s: float = 60) -> float:
        """Seconds from spawn until /status_check answered 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/status_check", timeout=5).status_code == 200:
                    return time.monotonic() - self.started_at
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"not live after {timeout_s}s:\n{self.log()}")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_service(
    workdir: Path,
    env: dict[str, str] | None = None,
    target: str = "service:Facecheck",
    cwd: Path = PROJECT_ROOT,
) -> RunningService:
    """Spawn the service on a free port with its own SQLite file under `workdir`, and
    return once it answers HTTP (not necessarily live yet). `target` is what `bentoml serve`
    serves (the source's service, or a built bento's tag or folder), run from `cwd`."""
    workdir.mkdir(parents=True, exist_ok=True)
    # free_port() only finds a port that was free a moment ago: another server (or a
    # runner's own port) can take it before bentoml binds it. Then pick another.
    for _ in range(BIND_ATTEMPTS):
        service = _spawn(workdir, env or {}, target, cwd, free_port())
        while time.monotonic() - service.started_at < START_TIMEOUT_S:
            if service.process.poll() is not None:
                if "Could not bind" in service.log():
                    break
                raise RuntimeError(f"bentoml serve exited:\n{service.log()}")
            try:
                requests.get(f"{service.url}/status_check", timeout=2)
                return service
            except (requests.ConnectionError, requests.Timeout):  # bound, workers not up yet
                time.sleep(0.1)
        else:
            service.stop()
            raise RuntimeError(f"service did not answer in {START_TIMEOUT_S}s:\n{service.log()}")
    raise RuntimeError(f"no free port after {BIND_ATTEMPTS} attempts:\n{service.log()}")


def _spawn(workdir: Path, env: dict[str, str], target: str, cwd: Path, port: int) -> RunningService:
    db_path = workdir / "facecheck.db"
    log_path = workdir / "serve.log"
    # The store is what `env` says, never a MONGODB_URI that happens to be in this shell.
    inherited = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_DB")}
    full_env = (
        inherited
        | {
            "BENTOML_DO_NOT_TRACK": "True",
            "FACECHECK_PORT": str(port),
            "FACECHECK_DB_PATH": str(db_path),
            "BENTOML_HOME": str(workdir / "bentoml"),
        }
        | env
    )
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", target],
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningService(
        f"http://127.0.0.1:{port}",
        db_path,
        process,
        log_path,
        started,
        mongodb_uri=full_env.get("MONGODB_URI", ""),
        mongodb_db=full_env.get("MONGODB_DB", "facecheck"),
    )
