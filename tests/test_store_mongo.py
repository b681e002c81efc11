"""MongoStore: the store contract over real pymongo.

Two servers, as test ids say:
  [nx27017-standin]  the nx-27017 package, a MongoDB wire-protocol *stand-in* written in
                     Python on SQLite, started here on a free loopback port. It proves the
                     store's queries and wire traffic, not MongoDB's own semantics.
  [real-mongodb]     a real MongoDB at MONGODB_URI, skipped when that isn't set or reachable.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from facecheck.settings import Settings
from facecheck.store import StoreUnavailable, open_store
from facecheck.store.mongo import MongoStore

try:
    from tests.store_contract import StoreContract
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from store_contract import StoreContract

TIMEOUT_MS = 5000
NO_REAL_MONGODB = "MONGODB_URI not set: no MongoDB server to run the MongoDB store contract against"
_START_STANDIN = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable(uri: str, timeout_ms: int) -> bool:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="module")
def standin_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the nx-27017 stand-in in a subprocess; yield its mongodb:// URI."""
    workdir = tmp_path_factory.mktemp("nx27017")
    port = _free_port()
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


@pytest.fixture(scope="module")
def real_mongodb_uri() -> str:
    uri = os.environ.get("MONGODB_URI", "").strip()
    if not uri:
        pytest.skip(NO_REAL_MONGODB)
    if not _reachable(uri, TIMEOUT_MS):
        pytest.skip(f"MONGODB_URI is set but no MongoDB answered there within {TIMEOUT_MS} ms")
    return uri


@pytest.fixture(params=["nx27017-standin", "real-mongodb"])
def mongo_uri(request: pytest.FixtureRequest) -> str:
    if request.param == "nx27017-standin":
        return request.getfixturevalue("standin_uri")
    return request.getfixturevalue("real_mongodb_uri")


@pytest.fixture
def db_name(mongo_uri: str) -> Iterator[str]:
    name = f"facecheck_test_{uuid.uuid4().hex[:12]}"
    yield name
    client: MongoClient = MongoClient(mongo_uri, serverSelectionTimeoutMS=TIMEOUT_MS)
    try:
        client.drop_database(name)
    except PyMongoError:
        pass  # a unique name per test: leftovers can't leak into other tests
    finally:
        client.close()


@pytest.fixture
def reopen(mongo_uri: str, db_name: str):
    return lambda: MongoStore(mongo_uri, db_name, TIMEOUT_MS)


@pytest.fixture
def store(reopen) -> Iterator[MongoStore]:
    store = reopen()
    yield store
    store.close()


@pytest.fixture
def raw_contents(mongo_uri: str, db_name: str):
    """Every document of every collection, as the BSON the server hands back."""

    def read() -> bytes:
        client: MongoClient = MongoClient(mongo_uri, serverSelectionTimeoutMS=TIMEOUT_MS)
        try:
            db = client[db_name]
            return b"".join(
                bson.encode(doc) for name in db.list_collection_names() for doc in db[name].find()
            )
        finally:
            client.close()

    return read


class TestMongoStoreContract(StoreContract):
    pass


def test_open_store_picks_mongodb_when_uri_set(tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "unused.db", mongodb_uri="mongodb://127.0.0.1:1/")
    store = open_store(settings)  # doesn't connect yet, so this can't hang or fail
    try:
        assert isinstance(store, MongoStore)
    finally:
        store.close()
    assert not (tmp_path / "unused.db").exists()


def test_unreachable_server_raises_store_unavailable_quickly() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{_free_port()}/", "facecheck", timeout_ms=200)
    try:
        started = time.monotonic()
        for call in (store.ping, lambda: store.consume("0123456789ab"), store.list_keys):
            with pytest.raises(StoreUnavailable):
                call()
        assert store.authenticate({"$ne": None}) == ("invalid", None)  # no DB needed
        assert time.monotonic() - started < 10
    finally:
        store.close()


def test_key_ids_are_unique_in_the_database(standin_uri: str) -> None:
    """The unique index exists, so two keys can never share an id (nx27017-standin)."""
    name = f"facecheck_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(standin_uri, name, TIMEOUT_MS)
    client: MongoClient = MongoClient(standin_uri, serverSelectionTimeoutMS=TIMEOUT_MS)
    try:
        info, _ = store.create_key("alice", None)
        with pytest.raises(PyMongoError):
            client[name]["api_keys"].insert_one({"key_id": info.key_id, "name": "dup"})
    finally:
        store.close()
        client.drop_database(name)
        client.close()
