"""Face detection (YuNet from the `yuface` wheel) and the face-selection policy.

The detector runs on a downscaled copy; boxes and landmarks come back in the
coordinates of the image it was given. Tight crops (a face filling the frame) are
retried with a border, because detectors need some context around a face."""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")  # yuface's OpenMP pool, read at load time

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import yuface  # noqa: E402

DETECT_LONG_SIDE = 320
DETECT_MIN_CONFIDENCE = 0.6
RETRY_PAD_FRACTION = 0.3
BORDER_GREY = (127, 127, 127)


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
        self.reason = reason  # "no_face" | "face_too_small" | "multiple_faces"


class YuNetDetector:
    """libfacedetection's YuNet (BSD-3-Clause), shipped compiled inside `yuface`."""

    name = "yunet"

    def __init__(self, long_side: int = DETECT_LONG_SIDE, confidence: float = DETECT_MIN_CONFIDENCE):
        self.long_side = long_side
        self.confidence = confidence

    def _run(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        scale = min(1.0, self.long_side / max(h, w))
        small = (
            image
            if scale == 1.0
            else cv2.resize(
                image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
            )
        )
        confs, boxes, marks = yuface.detect(np.ascontiguousarray(small), conf=self.confidence)
        return [
            Face(
                box=boxes[i].astype(np.float32) / scale,
                landmarks=marks[i].astype(np.float32).reshape(5, 2) / scale,
                confidence=float(confs[i]) / 100.0,
            )
            for i in range(len(confs))
        ]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces sorted largest first."""
        faces = self._run(image)
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
                for f in self._run(padded)
            ]
        return sorted(faces, key=lambda f: f.size, reverse=True)


def select_face(faces: list[Face], min_face_px: float, policy: str = "reject", ratio: float = 0.5) -> Face:
    """The one face to judge. Background faces much smaller than the main one are
    ignored; a second face at least `ratio` of the main one's size is ambiguous and
    rejected under the default policy, or ignored under "largest"."""
    if not faces:
        raise FaceNotUsable("no_face")
    main = faces[0]
    if main.size < min_face_px:
        raise FaceNotUsable("face_too_small")
    if policy == "reject" and len(faces) > 1 and faces[1].size >= ratio * main.size:
        raise FaceNotUsable("multiple_faces")
    return main
