"""Face -> model crop: the one path shared by training and serving.

A crop is a square around the face box, `scale` times its larger side, rotated so the
eyes are level, resized to `size` px, BGR uint8. Models take these uint8 crops as
they are (NHWC) and normalise inside the ONNX graph, so no float preprocessing can
drift between training and serving. Each model file records its CropSpec."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import cv2
import numpy as np

from facecheck.faces import Face

MAX_ROLL_DEGREES = 45.0


@dataclass(frozen=True)
class FitCrop:
    """MiniFASNet's crop rule (its repository's CropImage): a square of `scale` x the face box,
    shrunk to fit inside the image and shifted into it instead of padded, not turned, resized
    to `size` px. The box is the one its detector would give: square, `box_side` x YuNet's
    larger side, its centre `box_drop` of that side lower (training/minifasnet.py)."""

    scale: float
    size: int
    box_side: float = 1.0
    box_drop: float = 0.0


@dataclass(frozen=True)
class CropSpec:
    """The crop a model file takes. With `extras`, the file takes a square canvas: this crop
    at its top left, each extra crop below the one before in the column to its right."""

    scale: float
    size: int
    extras: tuple[FitCrop, ...] = ()

    @property
    def canvas(self) -> int:
        """The side of the square the model file takes."""
        return self.size + max((e.size for e in self.extras), default=0)

    def extra_origins(self) -> list[tuple[int, int]]:
        """(top, left) of each extra crop on the canvas."""
        tops = np.cumsum([0] + [e.size for e in self.extras])[:-1]
        if len(self.extras) and tops[-1] + self.extras[-1].size > self.canvas:
            raise ValueError(f"{self.extras} do not fit beside a {self.size} px crop")
        return [(int(top), self.size) for top in tops]

    def to_metadata(self) -> dict[str, str]:
        meta = {"crop_scale": str(self.scale), "crop_size": str(self.size)}
        if self.extras:
            meta["crop_extras"] = json.dumps([dataclasses.astuple(e) for e in self.extras])
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> CropSpec:
        extras = tuple(FitCrop(*values) for values in json.loads(meta.get("crop_extras", "[]")))
        return cls(scale=float(meta["crop_scale"]), size=int(meta["crop_size"]), extras=extras)


def roll_degrees(face: Face) -> float:
    left, right = sorted(face.landmarks[:2].tolist())  # eyes, by x
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    return max(-MAX_ROLL_DEGREES, min(MAX_ROLL_DEGREES, angle))


def square_matrix(face: Face, spec: CropSpec, degrees: float = 0.0) -> np.ndarray:
    """2x3 affine matrix from image coordinates to a square of `spec.scale` times the face
    box's larger side around its centre, turned by `degrees`, `spec.size` px."""
    x, y, w, h = face.box.tolist()
    side = max(w, h) * spec.scale
    zoom = spec.size / side
    matrix = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), degrees, zoom)
    matrix[0, 2] += spec.size / 2 - (x + w / 2)
    matrix[1, 2] += spec.size / 2 - (y + h / 2)
    return matrix


def crop_matrix(face: Face, spec: CropSpec) -> np.ndarray:
    """2x3 affine matrix from image coordinates to crop coordinates (eyes levelled)."""
    return square_matrix(face, spec, roll_degrees(face))


def crop_face(image: np.ndarray, face: Face, spec: CropSpec) -> np.ndarray:
    """The model's input: the crop, or its canvas with the extra crops beside it."""
    crop = square_crop(image, face, spec)
    if not spec.extras:
        return crop
    canvas = np.zeros((spec.canvas, spec.canvas, 3), np.uint8)
    canvas[: spec.size, : spec.size] = crop
    for extra, (top, left) in zip(spec.extras, spec.extra_origins(), strict=True):
        canvas[top : top + extra.size, left : left + extra.size] = fit_crop(image, face, extra)
    return canvas


def fit_crop(image: np.ndarray, face: Face, spec: FitCrop) -> np.ndarray:
    x, y, w, h = face.box.tolist()
    side = spec.box_side * max(w, h)
    cx, cy = x + w / 2, y + h / 2 + spec.box_drop * max(w, h)
    height, width = image.shape[:2]
    # their arithmetic, their int() truncation included
    scaled = side * min((height - 1) / side, (width - 1) / side, spec.scale)
    left, top = cx - scaled / 2, cy - scaled / 2
    right, bottom = cx + scaled / 2, cy + scaled / 2
    if left < 0:
        right, left = right - left, 0
    if top < 0:
        bottom, top = bottom - top, 0
    if right > width - 1:
        left, right = left - (right - width + 1), width - 1
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), height - 1
    region = image[int(top) : int(bottom) + 1, int(left) : int(right) + 1]
    return cv2.resize(region, (spec.size, spec.size), interpolation=cv2.INTER_LINEAR)


def square_crop(image: np.ndarray, face: Face, spec: CropSpec) -> np.ndarray:
    matrix = crop_matrix(face, spec)
    zoom = math.hypot(matrix[0, 0], matrix[0, 1])
    if zoom < 0.5:
        # Area-downscale the region first: warpAffine alone would alias.
        image, matrix = _shrink_region(image, matrix, spec.size, 2 * zoom)
    return cv2.warpAffine(
        image,
        matrix,
        (spec.size, spec.size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def image_share(shape: tuple[int, ...], face: Face, spec: CropSpec, grid: int = 32) -> float:
    """Share of the crop that lies inside an image of this shape; the rest is black padding."""
    inverse = cv2.invertAffineTransform(crop_matrix(face, spec))
    centres = (np.arange(grid) + 0.5) * spec.size / grid
    xs, ys = np.meshgrid(centres, centres)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(grid * grid)], axis=1) @ inverse.T
    h, w = shape[:2]
    inside = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
    return float(inside.mean())


def landmarks_in_crop(face: Face, spec: CropSpec) -> np.ndarray:
    matrix = crop_matrix(face, spec)
    points = np.hstack([face.landmarks, np.ones((5, 1), np.float32)])
    return (points @ matrix.T).astype(np.float32)


def _shrink_region(
    image: np.ndarray, matrix: np.ndarray, size: int, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    mapped = corners @ inverse.T
    h, w = image.shape[:2]
    x0, y0 = (max(0, int(math.floor(v))) for v in mapped.min(axis=0))
    x1 = min(w, int(math.ceil(mapped[:, 0].max())) + 1)
    y1 = min(h, int(math.ceil(mapped[:, 1].max())) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix
    region = image[y0:y1, x0:x1]
    new_w, new_h = max(1, round(region.shape[1] * factor)), max(1, round(region.shape[0] * factor))
    small = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    sx, sy = new_w / region.shape[1], new_h / region.shape[0]
    # crop = M @ p, p = (q / s) + origin for q in the small region
    adjusted = matrix.copy()
    adjusted[:, 0] = matrix[:, 0] / sx
    adjusted[:, 1] = matrix[:, 1] / sy
    adjusted[:, 2] = matrix[:, 2] + matrix[:, 0] * x0 + matrix[:, 1] * y0
    return small, adjusted
