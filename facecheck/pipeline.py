"""Decoded selfie -> the face to judge -> model crops. Shared by the service and by
evaluation, so a model is measured on exactly what it is served."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from facecheck.faces import Face, FaceNotUsable, YuNetDetector, select_face
from facecheck.images import DecodedImage
from facecheck.orientation import find_upright_faces
from facecheck.preprocess import CropSpec, crop_face, image_share
from facecheck.settings import Settings


def locate_face(
    decoded: DecodedImage, detector: YuNetDetector, settings: Settings
) -> tuple[DecodedImage, Face]:
    """The image turned upright (see find_upright_faces) and the face to judge in it.
    Raises FaceNotUsable. The minimum face size is in original-image pixels."""
    pixels, faces = find_upright_faces(decoded.pixels, detector)
    face = select_face(
        faces,
        min_face_px=settings.min_face_px * decoded.scale,
        policy=settings.multi_face_policy,
        ratio=settings.multi_face_ratio,
    )
    return (decoded if pixels is decoded.pixels else replace(decoded, pixels=pixels)), face


def model_crops(decoded: DecodedImage, face: Face, specs: list[CropSpec]) -> dict[CropSpec, np.ndarray]:
    """One 1 x S x S x 3 crop per distinct spec."""
    return {spec: crop_face(decoded.pixels, face, spec)[None] for spec in dict.fromkeys(specs)}


def require_context(decoded: DecodedImage, face: Face, spec: CropSpec, min_share: float) -> None:
    """Raises FaceNotUsable("face_fills_image") when less than `min_share` of the face's
    `spec` crop is image: the liveness check judges a face with its surroundings, and a
    face cut out of its photo (a printed one included) leaves it nothing but the face."""
    if image_share(decoded.pixels.shape, face, spec) < min_share:
        raise FaceNotUsable("face_fills_image")


def check_crops(
    decoded: DecodedImage, detector: YuNetDetector, settings: Settings, specs: dict[str, CropSpec]
) -> dict[str, np.ndarray]:
    """check name -> its model's 1 x S x S x 3 crop of the face to judge, as the service
    cuts it. Raises FaceNotUsable, for the liveness check also when the face fills the image."""
    decoded, face = locate_face(decoded, detector, settings)
    if "liveness" in specs:
        require_context(decoded, face, specs["liveness"], settings.liveness_min_context)
    crops = model_crops(decoded, face, list(specs.values()))
    return {check: crops[spec] for check, spec in specs.items()}
