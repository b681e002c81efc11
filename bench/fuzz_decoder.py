"""Fuzz the selfie decoder with 100,000+ random inputs (fixed seed, reproducible).

Same generators and property as tests/test_decoder_fuzz.py (tests/imaging.py): arbitrary
text and bytes, mutated valid PNG/JPEG, patched IHDR/SOF sizes. The only exception allowed is
ImageError, every call must finish within --limit-ms, and decoded images must be HxWx3 uint8
within max_pixels. Prints progress and a summary; exits 1 on any failure.

    nice -n 10 python bench/fuzz_decoder.py [--inputs 2000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.imaging import checked_decode, fuzz_case, seed_images  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def save(out: Path, label: str, payload: str | bytes) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{label}.{'txt' if isinstance(payload, str) else 'bin'}"
    path.write_bytes(payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit-ms", type=float, default=1000.0, help="slower calls count as failures")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fuzz_decoder"), help="failing/slowest inputs")
    parser.add_argument("--codec-noise", action="store_true", help="keep libpng/libjpeg messages on stderr")
    args = parser.parse_args()

    if not args.codec_noise:  # OpenCV's codecs print a line per broken input to fd 2
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    rng = random.Random(args.seed)
    seeds = seed_images()
    outcomes: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    slowest = (0.0, "", b"")
    failures = 0
    start = time.perf_counter()
    for i in range(1, args.inputs + 1):
        kind, payload, max_pixels = fuzz_case(rng, seeds)
        t0 = time.perf_counter()
        try:
            outcomes[f"{kind}:{'decoded' if checked_decode(payload, max_pixels) else 'ImageError'}"] += 1
            error = None
        except Exception as exc:  # noqa: BLE001 - anything but ImageError is the finding
            error = exc
        elapsed = (time.perf_counter() - t0) * 1000
        if elapsed > slowest[0]:
            slowest = (elapsed, kind, payload)
        if error is not None or elapsed > args.limit_ms:
            failures += 1
            name = type(error).__name__ if error is not None else "TooSlow"
            errors[name] += 1
            path = save(args.out, f"failure-{i}-{name}", payload)
            print(f"FAIL #{i} {kind} {name} {elapsed:.0f} ms max_pixels={max_pixels} -> {path}", flush=True)
            if error is not None:
                print("".join(traceback.format_exception(error)), flush=True)
        if i % 10_000 == 0:
            rate = i / (time.perf_counter() - start)
            print(
                f"{i:>7} inputs  {rate:,.0f}/s  failures {failures}  slowest {slowest[0]:.1f} ms"
                f"  peak RSS {peak_rss_mb():.0f} MB",
                flush=True,
            )

    slow_path = save(args.out, "slowest", slowest[2])
    print("\nsummary")
    print(f"  inputs tried      {args.inputs:,} (seed {args.seed}) in {time.perf_counter() - start:.0f} s")
    for key in sorted(outcomes):
        print(f"  {key:<28} {outcomes[key]:>7,}")
    print(f"  ImageError total  {sum(n for k, n in outcomes.items() if k.endswith('ImageError')):,}")
    print(f"  decoded total     {sum(n for k, n in outcomes.items() if k.endswith('decoded')):,}")
    print(f"  failures          {failures} {dict(errors) if errors else ''}")
    print(f"  slowest input     {slowest[0]:.1f} ms ({slowest[1]}, saved to {slow_path})")
    print(f"  peak RSS          {peak_rss_mb():.0f} MB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
