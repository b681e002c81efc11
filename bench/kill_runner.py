"""Kill the liveness runner's worker process under load and watch the service recover.

Starts the service, posts selfies to /liveness from a thread pool for --seconds, SIGKILLs
the process serving `liveness_runner` (a child of `bentoml serve` whose command line names
it) at --kill-at, and reports the status histogram before, during and after the outage,
the time until requests succeed again, and whether BentoML started a new runner process.

    nice -n 10 python -m bench.kill_runner [--seconds 40] [--kill-at 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from bench.launcher import RunningService, start_service
from bench.run import make_selfies
from facecheck.settings import PROJECT_ROOT

RUNNER = "liveness_runner"


@dataclass(frozen=True)
class Answer:
    sent: float  # seconds since the load started
    done: float
    status: str  # HTTP status, or the client-side exception's name


def runner_pids(service: RunningService, name: str = RUNNER) -> list[int]:
    """Processes in the service's tree whose command line names the runner service."""
    pids = []
    for proc in psutil.Process(service.process.pid).children(recursive=True):
        try:
            if name in proc.cmdline():
                pids.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def load(service: RunningService, key: str, urls: list[str], clients: int, seconds: float, t0: float) -> list:
    answers: list[Answer] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        session, n = requests.Session(), i
        while (sent := time.monotonic() - t0) < seconds:
            body = {"hash_id": key, "selfie_image": urls[n % len(urls)]}
            n += clients
            try:
                status = str(session.post(f"{service.url}/liveness", json=body, timeout=60).status_code)
            except requests.RequestException as exc:
                status = type(exc).__name__
            with lock:
                answers.append(Answer(sent, time.monotonic() - t0, status))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return answers


def watch_runner(service: RunningService, t0: float, kill_at: float, seconds: float) -> dict:
    """At kill_at, SIGKILL the runner; then poll for a replacement process until the end."""
    time.sleep(max(0.0, kill_at - (time.monotonic() - t0)))
    before = runner_pids(service)
    if not before:
        raise RuntimeError(f"no process names {RUNNER}: {runner_pids(service, '')}")
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic() - t0
    info: dict = {"killed_pids": before, "killed_at": killed, "new_pids": [], "restarted_at": None}
    while time.monotonic() - t0 < seconds:
        new = [p for p in runner_pids(service) if p not in before]
        if new and info["restarted_at"] is None:
            info |= {"new_pids": new, "restarted_at": time.monotonic() - t0}
        time.sleep(0.2)
    info["live_at_end"] = requests.get(f"{service.url}/status_check", timeout=10).status_code
    return info


def report(answers: list[Answer], info: dict) -> str:
    killed = info["killed_at"]
    failures_after = [a.done for a in answers if a.done >= killed and a.status != "201"]
    last_failure = max(failures_after, default=killed)
    # the outage ends with the first success of a request sent after the kill
    back = min((a.done for a in answers if a.sent > killed and a.status == "201"), default=None)
    recovered = max(last_failure, back or killed)
    phases = {
        f"before (0-{killed:.1f} s)": [a for a in answers if a.done < killed],
        f"during ({killed:.1f}-{recovered:.1f} s)": [a for a in answers if killed <= a.done <= recovered],
        f"after ({recovered:.1f} s-end)": [a for a in answers if a.done > recovered],
    }
    lines = [f"killed {RUNNER} pid(s) {info['killed_pids']} at {killed:.1f} s"]
    for name, group in phases.items():
        histogram = ", ".join(f"{s}: {n}" for s, n in sorted(Counter(a.status for a in group).items()))
        lines.append(f"  {name}: {len(group)} answers; {histogram or '-'}")
    if info["restarted_at"] is None:
        lines.append("  BentoML started no new runner process")
    else:
        after = info["restarted_at"] - killed
        lines.append(f"  new {RUNNER} pid(s) {info['new_pids']} seen {after:.1f} s after the kill")
    if back is None:
        lines.append("  no request sent after the kill succeeded")
    else:
        lines.append(f"  first success of a request sent after the kill: {back - killed:.1f} s after it")
    lines.append(
        f"  last failure: {last_failure - killed:.1f} s after the kill ({len(failures_after)} failures)"
    )
    slowest = max(answers, key=lambda a: a.done - a.sent)
    lines.append(f"  slowest answer: {slowest.done - slowest.sent:.1f} s (sent at {slowest.sent:.1f} s)")
    lines.append(f"  /status_check at the end: {info['live_at_end']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--kill-at", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="front workers")
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    args = parser.parse_args()
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    urls = make_selfies(4)
    with tempfile.TemporaryDirectory(prefix="kill_runner_") as workdir:
        env = {"FACECHECK_MODELS_DIR": str(args.models_dir), "FACECHECK_WORKERS": str(args.workers)}
        service = start_service(Path(workdir), env)
        try:
            service.wait_until_live()
            key = service.new_key(name="kill-runner")
            t0 = time.monotonic()
            with ThreadPoolExecutor(1) as watcher:
                watched = watcher.submit(watch_runner, service, t0, args.kill_at, args.seconds)
                answers = load(service, key, urls, args.clients, args.seconds, t0)
                info = watched.result()
            print(report(answers, info))
            log = [line for line in service.log().splitlines() if "scheme=http" not in line]  # no access log
            print("service log, without the access log (last 15 lines):", *log[-15:], sep="\n  ")
        finally:
            service.stop()
    return 0 if info["restarted_at"] is not None and info["live_at_end"] == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
