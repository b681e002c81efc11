"""Schemathesis against the running service (bench/fuzz_api.py with ~100 generated requests
per endpoint): no 5xx, every 4xx a JSON object, and the service still live afterwards."""

from __future__ import annotations

import requests

from bench.fuzz_api import ENDPOINTS, fuzz

EXAMPLES = 100


def test_generated_requests_get_no_5xx(service) -> None:
    report = fuzz(service.url, service.new_key(name="fuzz"), EXAMPLES)
    print("\n" + report.summary())
    assert not report.failures, report.summary()
    for endpoint in ENDPOINTS:
        assert report.requests(endpoint) >= EXAMPLES // 2, report.summary()
    assert requests.get(f"{service.url}/status_check", timeout=10).status_code == 200
