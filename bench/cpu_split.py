"""CPU milliseconds per request in each process (front workers, runners, Locust) while
Locust loads the service: where the service's time goes beyond the bare pipeline.

    python -m bench.cpu_split --mode liveness --users 32 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import time

import psutil

from bench.launcher import start_service
from bench.run import MODES, OUT, SELFIES, fresh_workdir, locust_stats, make_selfies, start_locust


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, tuple[str, float]]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = (" ".join(p.cmdline())[-70:], t.user + t.system)
        except psutil.NoSuchProcess:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=list(MODES), default="liveness")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20, help="measured window, after 12 s of load")
    args = parser.parse_args()
    if not SELFIES.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        SELFIES.write_text(json.dumps(make_selfies()))
    setting, endpoint, _ = MODES[args.mode]
    service = start_service(fresh_workdir(f"service-cpu-{args.mode}"), {"FACECHECK_LIVENESS_MODE": setting})
    prefix = OUT / f"cpu-split-{args.mode}"
    try:
        service.wait_until_live()
        key = service.new_key(name="cpu-split")
        locust = start_locust(service, key, endpoint, args.users, args.seconds + 20, prefix)
        time.sleep(12)
        root = psutil.Process(service.process.pid)
        procs = [root, *root.children(recursive=True), psutil.Process(locust.pid)]
        before, t0 = cpu_seconds(procs), time.monotonic()
        time.sleep(args.seconds)
        after, window = cpu_seconds(procs), time.monotonic() - t0
        locust.wait()
    finally:
        service.stop()
    stats = locust_stats(prefix)
    requests = stats["rps"] * window
    print(f"{args.mode}: {stats['rps']:.1f} req/s, p95 {stats['p95']:.0f} ms, {window:.0f} s window")
    total = 0.0
    for pid, (name, cpu) in after.items():
        used = cpu - before.get(pid, (name, cpu))[1]
        total += used
        print(f"{used / window * 100:6.1f} % CPU {used / requests * 1000:7.2f} ms/request  {name}")
    print(f"{total / window * 100:6.1f} % CPU {total / requests * 1000:7.2f} ms/request  total")


if __name__ == "__main__":
    main()
