"""Soak test: the service (real models, 2 front workers) under steady load for minutes,
watching for errors and memory growth. Not part of CI.

Starts the service, runs Locust at full speed for --warmup seconds (the warm-up, and the
measured maximum throughput unless --rps is given), then at half that rate (constant
throughput per user, FACECHECK_BENCH_RPS_PER_USER in locustfile.py) for --minutes, sampling
the RSS of the service's whole process tree every 10 s. Prints errors, RSS at the start
(after warm-up) and end, and the growth; replaces or appends "## Soak" in docs/performance.md.

    nice -n 10 python -m bench.soak [--minutes 10] [--rps 4] [--users 16] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil

from bench.launcher import RunningService, start_service
from bench.run import locust, make_selfies, server_errors, tree_rss_mb
from facecheck.settings import PROJECT_ROOT

SAMPLE_S = 10
REPORT = PROJECT_ROOT / "docs" / "performance.md"
HEADING = "## Soak"


def sample_rss(service: RunningService, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    t0 = time.monotonic()
    while True:
        samples.append((time.monotonic() - t0, tree_rss_mb(service.process.pid)))
        if stop.is_set():  # the last sample is taken after the load stopped
            return
        stop.wait(SAMPLE_S)


def rss_by_process(service: RunningService) -> dict[str, float]:
    """MB per process of the service tree, named by its --service-name and --worker-id."""
    root = psutil.Process(service.process.pid)
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            args, rss = proc.cmdline(), proc.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
        name = args[args.index("--service-name") + 1] if "--service-name" in args else "arbiter"
        worker = args[args.index("--worker-id") + 1] if "--worker-id" in args else ""
        out[f"{name}:{worker}" if worker else name] = rss
    return out


def locust_errors(prefix: Path) -> list[str]:
    """Locust's failure table ("occurrences x error") of a run written with --csv prefix."""
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path) as f:
        return [
            f"{row['Occurrences']} x {row['Method']} {row['Name']}: {row['Error']}"
            for row in csv.DictReader(f)
        ]


def soak(service: RunningService, key: str, args: argparse.Namespace, out: Path) -> dict:
    warm = locust(service, key, args.endpoint, args.users, args.warmup, out / "warmup")
    rps = args.rps or warm["rps"] / 2
    os.environ["FACECHECK_BENCH_RPS_PER_USER"] = f"{rps / args.users:.6f}"  # read by locustfile.py
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(service, stop, samples))
    by_process = rss_by_process(service)
    sampler.start()
    try:
        stats = locust(service, key, args.endpoint, args.users, int(args.minutes * 60), out / "soak")
    finally:
        stop.set()
        sampler.join()
        del os.environ["FACECHECK_BENCH_RPS_PER_USER"]
    start, end = samples[0][1], samples[-1][1]
    by_process_end = rss_by_process(service)
    return stats | {
        "max_rps": warm["rps"],
        "target_rps": rps,
        "rss_samples": samples,
        "rss_start": start,
        "rss_end": end,
        "rss_max": max(mb for _, mb in samples),
        "growth_pct": 100 * (end - start) / start,
        "http_5xx": server_errors(service),
        "errors": locust_errors(out / "soak"),
        "rss_by_process": {name: (mb, by_process_end.get(name, 0.0)) for name, mb in by_process.items()},
    }


def per_process(r: dict) -> str:
    return ", ".join(f"{name} {a:.0f} -> {b:.0f}" for name, (a, b) in sorted(r["rss_by_process"].items()))


def render(args: argparse.Namespace, r: dict) -> str:
    measured = "given with --rps" if args.rps else f"measured over the {args.warmup} s warm-up"
    rss = ", ".join(f"{mb:.0f}" for _, mb in r["rss_samples"][:: -(-len(r["rss_samples"]) // 20)])
    return "\n".join(
        [
            HEADING,
            "",
            f"Run {date.today().isoformat()} on {os.cpu_count()} cores: `python -m bench.soak --minutes "
            f"{args.minutes:g}{f' --rps {args.rps:g}' if args.rps else ''} --users {args.users}`, "
            f"service with real models and 2 front workers, `{args.endpoint}`.",
            f"Maximum throughput {r['max_rps']:.2f} req/s; soak at {r['target_rps']:.2f} req/s ({measured}"
            f"{'' if args.rps else ', halved'}), {args.users} Locust users at constant throughput.",
            "",
            "| metric | value |",
            "|---|---|",
            f"| duration | {args.minutes:g} min |",
            f"| requests / failures | {r['requests']} / {r['failures']} |",
            f"| HTTP 5xx in the service's request records | {r['http_5xx']} |",
            f"| achieved req/s | {r['rps']:.2f} |",
            f"| median / p95 / max (ms) | {r['median']:.0f} / {r['p95']:.0f} / {r['max']:.0f} |",
            f"| RSS of the process tree, start (after warm-up) / end / max (MB) | {r['rss_start']:.0f} / "
            f"{r['rss_end']:.0f} / {r['rss_max']:.0f} |",
            f"| RSS growth | {r['growth_pct']:+.1f} % |",
            "",
            f"RSS samples (MB, every {SAMPLE_S} s, at most 20 shown): {rss}.",
            f"Per process, start -> end (MB): {per_process(r)}.",
            "",
            "Errors: " + ("; ".join(r["errors"][:10]) if r["errors"] else "none") + ".",
            "",
        ]
    )


def write_section(section: str, path: Path = REPORT) -> None:
    """Replace the soak section of the report, or add it before the tuning log; the rest is kept."""
    text = path.read_text() if path.exists() else "# facecheck performance\n"
    before, found, after = text.partition(HEADING + "\n")
    if found:
        rest = after.split("\n## ", 1)
        text = before + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        head, log_heading, log = text.partition("\n## Tuning log\n")
        text = head.rstrip("\n") + "\n\n" + section + log_heading + log
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rps", type=float, help="soak rate (default: half the measured maximum)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=30, help="seconds at full speed before the soak")
    parser.add_argument("--endpoint", default="/liveness")
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md")
    args = parser.parse_args()
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    make_selfies()  # bench/out/selfies.json, which locustfile.py posts
    with tempfile.TemporaryDirectory(prefix="soak_") as workdir:
        env = {"FACECHECK_MODELS_DIR": str(args.models_dir), "FACECHECK_WORKERS": "2"}
        service = start_service(Path(workdir), env)
        try:
            service.wait_until_live()
            r = soak(service, service.new_key(name="soak"), args, Path(workdir))
        finally:
            service.stop()
    print(
        f"max {r['max_rps']:.2f} req/s, soak at {r['target_rps']:.2f} req/s for {args.minutes:g} min: "
        f"{r['requests']} requests, {r['failures']} failures, {r['http_5xx']} HTTP 5xx, "
        f"achieved {r['rps']:.2f} req/s, p95 {r['p95']:.0f} ms"
    )
    for error in r["errors"][:20]:
        print(" ", error)
    print(f"RSS start {r['rss_start']:.0f} MB, end {r['rss_end']:.0f} MB, growth {r['growth_pct']:+.1f} %")
    print(f"per process, start -> end (MB): {per_process(r)}")
    if not args.no_write:
        write_section(render(args, r))
        print(f"wrote the soak section of {REPORT.relative_to(PROJECT_ROOT)}")
    return 1 if r["failures"] or r["http_5xx"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
