"""MongoDB servers for tests: the nx-27017 stand-in started here, or a real MongoDB at
MONGODB_URI. Fixtures are re-exported by conftest.py.

  nx27017-standin  the nx-27017 package, a MongoDB wire-protocol *stand-in* written in
                   Python on SQLite, started on a free loopback port. It proves the store's
                   queries and wire traffic, not MongoDB's own semantics.
  real-mongodb     a real MongoDB at MONGODB_URI, skipped when that isn't set or reachable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench.launcher import free_port

TIMEOUT_MS = 5000
NO_REAL_MONGODB = "MONGODB_URI not set: no MongoDB server to run the MongoDB store contract against"
_START_STANDIN = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"


def _reachable(uri: str, timeout_ms: int) -> bool:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def standin_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the nx-27017 stand-in in a subprocess; yield its mongodb:// URI."""
    workdir = tmp_path_factory.mktemp("nx27017")
    port = free_port()
    command = [sys.executable, "-c", _START_STANDIN, "--db", str(workdir / "standin.db")]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--pid-file", str(workdir / "nx.pid"), "--log-file", str(workdir / "nx.log")]
    with open(workdir / "output.txt", "wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    uri = f"mongodb://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while not _reachable(uri, 500):
            if server.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "output.txt").read_text(errors="replace")
                pytest.fail(f"nx-27017 stand-in did not start on port {port}:\n{log}")
            time.sleep(0.2)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def real_mongodb_uri() -> str:
    uri = os.environ.get("MONGODB_URI", "").strip()
    if not uri:
        pytest.skip(NO_REAL_MONGODB)
    if not _reachable(uri, TIMEOUT_MS):
        pytest.skip(f"MONGODB_URI is set but no MongoDB answered there within {TIMEOUT_MS} ms")
    return uri
