"""Fuzz the HTTP API with schemathesis: request bodies generated from the service's own
OpenAPI schema (FastAPI's /openapi.json, which documents the POST bodies through
service.py's REQUEST_SCHEMA), both schema-conforming and schema-violating. Half of them
carry a valid key so the authenticated path is fuzzed too, and a third of those a real
(possibly mutated) small PNG/JPEG from tests/imaging.py, so decoding and face detection are.

Every answer must be below 500, and every 4xx must have a JSON object body. Prints the
requests per endpoint and the status histogram; exits 1 on any failure.
tests/test_api_fuzz.py runs the same code with fewer examples.

    nice -n 10 python -m bench.fuzz_api                     # starts the service (models/), 1000 per endpoint
    python -m bench.fuzz_api --url http://127.0.0.1:5001 --key fc_... --examples 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from bench.launcher import start_service
from facecheck.settings import PROJECT_ROOT
from tests.imaging import as_text, mutate, seed_images

SCHEMA_PATH = "/openapi.json"
ENDPOINTS = ("/liveness", "/deepfake")
SEEDS = list(seed_images().values())


def image_text(rng: random.Random) -> str:
    """A small valid image (no face), mutated half of the time, as base64 or a data URL."""
    data = rng.choice(SEEDS)
    return as_text(mutate(data, rng) if rng.random() < 0.5 else data, rng)


@dataclass
class FuzzReport:
    statuses: dict[str, Counter[int]] = field(default_factory=dict)  # endpoint -> status -> count
    failures: list[str] = field(default_factory=list)

    def requests(self, endpoint: str) -> int:
        return sum(self.statuses.get(endpoint, Counter()).values())

    def summary(self) -> str:
        lines = []
        for endpoint, counts in self.statuses.items():
            histogram = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
            lines.append(f"{endpoint}: {self.requests(endpoint)} requests; {histogram}")
        lines.append(f"failures: {len(self.failures)}")
        lines += self.failures[:20]
        return "\n".join(lines)


def load_schema(base_url: str) -> schemathesis.BaseSchema:
    """The served schema; fails unless it documents each endpoint's JSON request body."""
    schema = schemathesis.openapi.from_url(f"{base_url}{SCHEMA_PATH}", timeout=30)
    for endpoint in ENDPOINTS:
        body = schema.raw_schema["paths"][endpoint]["post"]["requestBody"]["content"]["application/json"]
        assert {"hash_id", "selfie_image"} <= set(body["schema"]["properties"]), endpoint
    return schema


def problem(status: int, content: bytes) -> str | None:
    if status >= 500:
        return "server error"
    if status >= 400:
        try:
            if isinstance(json.loads(content), dict):
                return None
        except ValueError:
            pass
        return "4xx without a JSON object body"
    return None


def fuzz_endpoint(
    schema: schemathesis.BaseSchema, base_url: str, endpoint: str, key: str, examples: int, report: FuzzReport
) -> None:
    operation = schema[endpoint]["POST"]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )
    counts = report.statuses.setdefault(endpoint, Counter())
    session = requests.Session()
    rng = random.Random(endpoint)  # not drawn by hypothesis, whose booleans and seeds lean to one side

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def one(case: schemathesis.Case) -> None:
        if isinstance(case.body, dict) and rng.random() < 0.5:
            case.body["hash_id"] = key
            if rng.random() < 1 / 3:
                case.body["selfie_image"] = image_text(rng)
        response = case.call(base_url=base_url, session=session, timeout=60)
        counts[response.status_code] += 1
        why = problem(response.status_code, response.content)
        if why:
            request = f"{case.media_type} {str(case.body)[:200]!r}"
            report.failures.append(
                f"{endpoint} {why}: {response.status_code} {response.content[:200]!r} <- {request}"
            )

    one()


def fuzz(base_url: str, key: str, examples: int) -> FuzzReport:
    """`examples` generated requests per endpoint against a running service."""
    schema = load_schema(base_url)
    report = FuzzReport()
    for endpoint in ENDPOINTS:
        fuzz_endpoint(schema, base_url, endpoint, key, examples, report)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000, help="generated requests per endpoint")
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--key", help="a valid key of the running service given by --url")
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    args = parser.parse_args()
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    if args.url:
        report = fuzz(args.url, args.key or "", args.examples)
    else:
        with tempfile.TemporaryDirectory(prefix="fuzz_api_") as workdir:
            env = {"FACECHECK_MODELS_DIR": str(args.models_dir), "FACECHECK_WORKERS": "1"}
            service = start_service(Path(workdir), env)
            try:
                service.wait_until_live()
                report = fuzz(service.url, service.new_key(name="fuzz"), args.examples)
                live = requests.get(f"{service.url}/status_check", timeout=10).status_code
                if live != 200:
                    report.failures.append(f"/status_check answered {live} after the fuzzing")
            finally:
                service.stop()
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
