"""Load test in the old benchmark's shape: users post 1280x960 JPEG selfies (150-250 kB,
base64 data URLs) as fast as the service answers.

    FACECHECK_KEY=fc_... FACECHECK_BENCH_ENDPOINT=/liveness \\
        locust -f locustfile.py --headless -u 32 -r 32 -t 60s --host http://127.0.0.1:5001

`python -m bench.run` does this for every mode, builds the selfies and writes the report.
FACECHECK_BENCH_RPS_PER_USER caps each user's request rate (constant throughput; bench/soak.py);
unset or 0, users send as fast as the service answers.

Locust shares the machine's cores with the service, so users are FastHttpUser
(geventhttpclient): the same requests for a fraction of python-requests' CPU."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, constant_throughput, task

SELFIES = Path(os.environ.get("FACECHECK_BENCH_SELFIES", "bench/out/selfies.json"))
ENDPOINT = os.environ.get("FACECHECK_BENCH_ENDPOINT", "/liveness")
KEY = os.environ.get("FACECHECK_KEY", "")
RPS_PER_USER = float(os.environ.get("FACECHECK_BENCH_RPS_PER_USER", "0") or 0)

_bodies = [json.dumps({"hash_id": KEY, "selfie_image": url}) for url in json.loads(SELFIES.read_text())]
_next_body = itertools.cycle(_bodies)


class SelfieClient(FastHttpUser):
    wait_time = constant_throughput(RPS_PER_USER) if RPS_PER_USER > 0 else constant(0)

    @task
    def check(self) -> None:
        with self.client.post(
            ENDPOINT, data=next(_next_body), headers={"Content-Type": "application/json"}, catch_response=True
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
