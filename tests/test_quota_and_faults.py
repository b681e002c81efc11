"""Exact quotas under concurrency and across a restart, and store faults, over HTTP
against the real service (two front workers). The quota test runs on the real SQLite
file, on MongoDB over the nx-27017 stand-in, and on a real MongoDB when MONGODB_URI is set."""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pymongo import MongoClient

from bench.launcher import start_service
from facecheck import contract

LIMIT, REQUESTS, CLIENTS = 500, 800, 16


@pytest.fixture(params=["sqlite", "nx27017-standin", "real-mongodb"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The service's store settings: its own SQLite file, or a fresh MongoDB database."""
    if request.param == "sqlite":
        yield {}
        return
    uri = request.getfixturevalue("standin_uri" if request.param == "nx27017-standin" else "real_mongodb_uri")
    db = f"facecheck_quota_{uuid.uuid4().hex[:12]}"
    yield {"MONGODB_URI": uri, "MONGODB_DB": db}
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(db)
    finally:
        client.close()


def test_quota_is_exact_across_workers_and_restart(shipped_models, selfie, store_env, tmp_path) -> None:
    env = {"FACECHECK_MODELS_DIR": str(shipped_models), "FACECHECK_WORKERS": "2"} | store_env
    service = start_service(tmp_path, env)
    try:
        service.wait_until_live()
        key = service.new_key(limit=LIMIT)
        body = {"hash_id": key, "selfie_image": selfie}

        def call(_: int) -> tuple[int, str]:
            resp = requests.post(f"{service.url}/liveness", json=body, timeout=120)
            return resp.status_code, resp.text

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(call, range(REQUESTS)))
    finally:
        service.stop()
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: LIMIT, 429: REQUESTS - LIMIT}, statuses
    assert all(
        text == '{"message":"Your request limit has been reached."}' for s, text in answers if s == 429
    )

    restarted = start_service(tmp_path, env)  # same SQLite file or MongoDB database
    try:
        restarted.wait_until_live()
        store = restarted.store()
        usage = store.usage(key.split("_")[1])
        store.close()
        assert usage is not None and usage["used"] == LIMIT
        resp = restarted.post("/liveness", body)
        assert (resp.status_code, resp.json()) == (429, {"message": contract.LIMIT_REACHED})
    finally:
        restarted.stop()


def test_locked_store_answers_503_and_recovers(shipped_models, selfie, tmp_path) -> None:
    env = {"FACECHECK_MODELS_DIR": str(shipped_models), "FACECHECK_STORE_TIMEOUT_MS": "300"}
    service = start_service(tmp_path, env)
    try:
        service.wait_until_live()
        key = service.new_key(limit=10)
        body = {"hash_id": key, "selfie_image": selfie}
        locker = sqlite3.connect(service.db_path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            resp = service.post("/liveness", body)
            assert (resp.status_code, resp.json()) == (503, {"error": contract.STORE_UNAVAILABLE})
            status = requests.get(f"{service.url}/status_check", timeout=10)
            assert (status.status_code, status.text) == (503, contract.STATUS_NOT_LIVE)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert service.post("/liveness", body).status_code == 201  # no restart needed
        assert requests.get(f"{service.url}/status_check", timeout=10).text == contract.STATUS_LIVE
        store = service.store()
        usage = store.usage(key.split("_")[1])
        store.close()
        assert usage is not None and usage["used"] == 1  # the failed request was not charged
    finally:
        service.stop()
