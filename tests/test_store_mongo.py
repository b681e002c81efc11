"""MongoStore: the store contract over real pymongo, against the two servers of
tests/mongo_servers.py, as test ids say: [nx27017-standin] (a stand-in, not MongoDB) and
[real-mongodb] (MONGODB_URI; skipped when unset)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import bson
import pytest
import requests
from pymongo import MongoClient, uri_parser
from pymongo.errors import PyMongoError

from bench.launcher import free_port, start_service
from facecheck import contract
from facecheck.settings import Settings
from facecheck.store import StoreUnavailable, open_store
from facecheck.store.mongo import MongoStore

try:
    from tests.store_contract import StoreContract
    from tests.tcp_proxy import TcpProxy
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from store_contract import StoreContract
    from tcp_proxy import TcpProxy

TIMEOUT_MS = 5000


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
    store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/", "facecheck", timeout_ms=200)
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


# ---- the service over HTTP while MongoDB drops off the network --------------------------

FAULT_TIMEOUT_MS = 500  # FACECHECK_STORE_TIMEOUT_MS for the service under test
FAULT_BOUND_S = 5 * FAULT_TIMEOUT_MS / 1000  # no request may wait longer while MongoDB is gone


def _via_proxy(uri: str, proxy: TcpProxy) -> str:
    """`uri` with its single host replaced by the proxy (credentials and authSource kept)."""
    parsed = uri_parser.parse_uri(uri)
    user = ""
    if parsed["username"]:
        user = f"{quote_plus(parsed['username'])}:{quote_plus(parsed['password'] or '')}@"
    options = ["directConnection=true"]  # never discover members behind the proxy
    if "authsource" in parsed["options"]:
        options.append(f"authSource={parsed['options']['authsource']}")
    return f"mongodb://{user}127.0.0.1:{proxy.port}/?{'&'.join(options)}"


@pytest.fixture
def partitionable_uri(mongo_uri: str) -> Iterator[tuple[str, TcpProxy]]:
    nodes = uri_parser.parse_uri(mongo_uri)["nodelist"] if mongo_uri.startswith("mongodb://") else []
    if len(nodes) != 1:
        pytest.skip("the fault test proxies one mongodb://host:port server; this URI names another shape")
    proxy = TcpProxy(nodes[0])
    yield _via_proxy(mongo_uri, proxy), proxy
    proxy.close()


def test_service_answers_503_within_bound_while_mongodb_is_gone_and_recovers(
    partitionable_uri, db_name, shipped_models, selfie, tmp_path
) -> None:
    """The service's MongoDB drops off the network (packets vanish: the client only sees
    its own timeout). Requests get a JSON 503 within a bounded time, /status_check says
    not live, nothing is charged; once the network is back the service heals without a
    restart."""
    uri, proxy = partitionable_uri
    env = {
        "FACECHECK_MODELS_DIR": str(shipped_models),
        "MONGODB_URI": uri,
        "MONGODB_DB": db_name,
        "FACECHECK_STORE_TIMEOUT_MS": str(FAULT_TIMEOUT_MS),
    }
    service = start_service(tmp_path, env)
    try:
        service.wait_until_live()
        key = service.new_key(limit=10)
        body = {"hash_id": key, "selfie_image": selfie}
        assert service.post("/liveness", body).status_code == 201

        proxy.partition()
        for _ in range(3):
            started = time.monotonic()
            resp = service.post("/liveness", body)
            waited = time.monotonic() - started
            assert (resp.status_code, resp.json()) == (503, {"error": contract.STORE_UNAVAILABLE})
            assert waited < FAULT_BOUND_S, f"a request waited {waited:.1f}s on a gone MongoDB"
        started = time.monotonic()
        status = requests.get(f"{service.url}/status_check", timeout=30)
        assert (status.status_code, status.text) == (503, contract.STATUS_NOT_LIVE)
        assert time.monotonic() - started < FAULT_BOUND_S
        assert not (tmp_path / "facecheck.db").exists()  # no silent fallback to SQLite

        proxy.heal()
        deadline = time.monotonic() + 30
        while (resp := service.post("/liveness", body)).status_code != 201:
            assert (resp.status_code, resp.json()) == (503, {"error": contract.STORE_UNAVAILABLE})
            assert time.monotonic() < deadline, "the service did not heal within 30 s"
            time.sleep(0.2)
        assert requests.get(f"{service.url}/status_check", timeout=10).text == contract.STATUS_LIVE
        store = service.store()
        try:
            usage = store.usage(key.split("_")[1])
        finally:
            store.close()
        assert usage is not None and usage["used"] == 2  # the 503s were not charged
    finally:
        service.stop()
