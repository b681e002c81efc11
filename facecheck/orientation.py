"""Turning a selfie so that its main face is upright, before anything is judged.

YuNet also finds faces lying on their side or upside down, with lower confidence and with
landmarks placed as if upright; the models would then judge a turned face, and turning a
printed photo would get it past the liveness check (models/liveness.md, Known limits,
"Turned faces"). The thresholds' figures are in models/yunet.md, "Settings"."""

from __future__ import annotations

import cv2
import numpy as np

from facecheck.faces import Face, YuNetDetector, detect_raw
from facecheck.preprocess import CropSpec, square_matrix

# the face's own square, looked at in its four quarter turns, tiled 2x2 and detected at once
ORIENTATION_CROP = CropSpec(scale=1.6, size=64)
ORIENTATION_MIN_CONFIDENCE = 0.3
# faces found at least this sure are upright: no turned face of the developer data scores it
UPRIGHT_CONFIDENCE = 0.93
# a turn is kept only when the turned face is found at least this sure: phone selfies taken from
# below score 0.6-0.9 upright, and the fetched webcam sources' wrong turns reached only
# 0.75-0.89; 34 of their 45 right or harmless turns reached 0.90 (models/yunet.md)
TURNED_MIN_CONFIDENCE = 0.9


def quarter_turns_to_upright(image: np.ndarray, face: Face) -> int:
    """How many np.rot90 turns make this face upright (0 when it is)."""
    # not levelled (a turned face's landmarks can't be trusted to level it); bilinear is
    # enough for a 64 px look
    square = cv2.warpAffine(
        image, square_matrix(face, ORIENTATION_CROP), (ORIENTATION_CROP.size,) * 2, flags=cv2.INTER_LINEAR
    )
    tiles = [np.rot90(square, turns) for turns in range(4)]  # 0 1 / 2 3
    confidences, boxes, _ = detect_raw(
        np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])]), ORIENTATION_MIN_CONFIDENCE
    )
    best = [-1] * 4
    for confidence, (x, y, w, h) in zip(confidences.tolist(), boxes.tolist(), strict=True):
        tile = 2 * int(y + h / 2 >= ORIENTATION_CROP.size) + int(x + w / 2 >= ORIENTATION_CROP.size)
        best[tile] = max(best[tile], confidence)
    return int(np.argmax(best))  # ties keep the image as it is


def find_upright_faces(image: np.ndarray, detector: YuNetDetector) -> tuple[np.ndarray, list[Face]]:
    """The image turned so that its main face is upright, and the faces found in it.

    The turn is kept only when the turned image's main face is then found with more
    confidence than before and at least TURNED_MIN_CONFIDENCE, so one unsure look at a small
    square cannot turn an upright selfie over."""
    faces = detector.detect(image)
    if not faces or faces[0].confidence >= UPRIGHT_CONFIDENCE:
        return image, faces
    turns = quarter_turns_to_upright(image, faces[0])
    if turns:
        turned = np.ascontiguousarray(np.rot90(image, turns))
        turned_faces = detector.detect(turned)
        best = turned_faces[0].confidence if turned_faces else 0.0
        if best >= TURNED_MIN_CONFIDENCE and best > faces[0].confidence:
            return turned, turned_faces
    return image, faces
