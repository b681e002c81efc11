"""Which face gets judged: the selection policy on detector output, and the detector's
retry chain on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecheck.faces import (
    SECOND_FACE_MIN_CONFIDENCE,
    Face,
    FaceNotUsable,
    YuNetDetector,
    downscale,
    select_face,
)
from facecheck.orientation import TURNED_MIN_CONFIDENCE, find_upright_faces, quarter_turns_to_upright


def face(size: float, confidence: float = 0.93, x: float = 0.0) -> Face:
    return Face(
        box=np.array([x, 0, size, size], np.float32),
        landmarks=np.zeros((5, 2), np.float32),
        confidence=confidence,
    )


def test_a_second_face_the_detector_is_sure_of_is_ambiguous() -> None:
    with pytest.raises(FaceNotUsable) as err:
        select_face([face(200), face(120, 0.91, x=300)], min_face_px=40)
    assert err.value.reason == "multiple_faces"


def test_small_or_doubtful_second_faces_are_ignored() -> None:
    main = face(200)
    assert select_face([main, face(90, 0.95, x=300)], min_face_px=40) is main  # background face
    doubtful = face(150, SECOND_FACE_MIN_CONFIDENCE - 0.1, x=300)  # e.g. a hand holding a photo
    assert select_face([main, doubtful], min_face_px=40) is main
    assert select_face([main, face(180, 0.95, x=300)], min_face_px=40, policy="largest") is main


def test_no_face_and_too_small() -> None:
    for faces, reason in (([], "no_face"), ([face(30)], "face_too_small")):
        with pytest.raises(FaceNotUsable) as err:
            select_face(faces, min_face_px=40)
        assert err.value.reason == reason


def test_detector_finds_the_face_in_a_selfie_and_in_its_tight_crop(live_frame: np.ndarray) -> None:
    """A whole frame is found at the first size; a tight crop of the face, which the first
    size can miss, through the fallback and border retries."""
    detector = YuNetDetector()
    faces = detector.detect(live_frame)
    assert faces and faces[0].confidence >= SECOND_FACE_MIN_CONFIDENCE
    x, y, w, h = faces[0].box.astype(int).tolist()
    tight = cv2.resize(live_frame[max(0, y) : y + h, max(0, x) : x + w], (500, 600))
    found = detector.detect(tight)
    assert found and found[0].size > 0.5 * 500


def test_downscale_is_close_to_area_resampling_and_reports_its_scales(live_frame: np.ndarray) -> None:
    small, scale = downscale(live_frame, 256)
    assert small.shape == (192, 256, 3) and scale.tolist() == pytest.approx([0.4, 0.4])
    area = cv2.resize(live_frame, (256, 192), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - area).mean() < 2.0  # grey levels
    odd = live_frame[:479, :637]  # whole-factor step drops a row and a column first
    small, scale = downscale(odd, 256)
    assert small.shape == (193, 256, 3) and scale.tolist() == pytest.approx([256 / 636, 193 / 478])
    assert downscale(live_frame, 640)[0] is live_frame  # never enlarged


@pytest.mark.parametrize("size", [(1280, 960), (1283, 961), (900, 675)])
def test_boxes_come_back_in_the_given_images_coordinates(live_frame: np.ndarray, size) -> None:
    detector = YuNetDetector()
    reference = detector.detect(live_frame)[0]
    found = detector.detect(cv2.resize(live_frame, size, interpolation=cv2.INTER_CUBIC))[0]
    zoom = np.array([size[0] / 640, size[1] / 480] * 2, np.float32)
    assert np.abs(found.box - reference.box * zoom).max() < 0.04 * found.size
    assert np.abs(found.landmarks - reference.landmarks * zoom[:2]).max() < 0.04 * found.size


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_face_is_turned_back_upright(live_frame: np.ndarray, turns: int) -> None:
    """A selfie lying on its side or upside down (no orientation tag) is found, and turned
    back to exactly the upright pixels before anything is judged."""
    detector = YuNetDetector()
    turned = np.ascontiguousarray(np.rot90(live_frame, turns))
    faces = detector.detect(turned)
    assert faces and faces[0].confidence < detector.detect(live_frame)[0].confidence
    assert quarter_turns_to_upright(turned, faces[0]) == 4 - turns
    upright, found = find_upright_faces(turned, detector)
    assert np.array_equal(upright, live_frame)
    assert np.allclose(found[0].box, detector.detect(live_frame)[0].box)


def test_a_turn_is_made_only_when_the_turned_face_is_found_surely(live_frame: np.ndarray) -> None:
    """A doubtful face is left as it lies, even where the quarter-turn look picks the right
    turn: upright selfies taken from below were turned over on such doubtful looks."""
    detector = YuNetDetector()
    doubtful = cv2.GaussianBlur(live_frame, (0, 0), 8)
    doubtful = np.clip((doubtful.astype(np.float32) - 128) * 0.5 + 128, 0, 255).astype(np.uint8)
    assert detector.detect(doubtful)[0].confidence < TURNED_MIN_CONFIDENCE  # even upright
    turned = np.ascontiguousarray(np.rot90(doubtful, 1))
    faces = detector.detect(turned)
    assert faces and quarter_turns_to_upright(turned, faces[0]) == 3
    image, found = find_upright_faces(turned, detector)
    assert image is turned and found[0].confidence == faces[0].confidence


def test_an_upright_face_is_left_as_it_is(live_frame: np.ndarray) -> None:
    detector = YuNetDetector()
    assert quarter_turns_to_upright(live_frame, detector.detect(live_frame)[0]) == 0
    image, faces = find_upright_faces(live_frame, detector)
    assert image is live_frame and faces
    blank = np.full((240, 320, 3), 127, np.uint8)
    assert find_upright_faces(blank, detector) == (blank, [])


def test_context_share_is_the_part_of_the_crop_inside_the_image(live_frame: np.ndarray) -> None:
    """The liveness check judges a face only with enough of its surroundings: a whole
    frame passes; the same face cut out of it (as an attacker may cut a printed photo)
    leaves a quarter of a 2x crop as image and is refused as `face_fills_image`."""
    from facecheck.images import DecodedImage
    from facecheck.pipeline import require_context
    from facecheck.preprocess import CropSpec, image_share

    spec = CropSpec(scale=2.0, size=224)
    detector = YuNetDetector()
    whole = detector.detect(live_frame)[0]
    assert image_share(live_frame.shape, whole, spec) == 1.0
    box = Face(np.array([0, 0, 100, 100], np.float32), np.zeros((5, 2), np.float32), 0.9)
    assert image_share((100, 100, 3), box, spec) == pytest.approx(0.25, abs=0.02)
    assert image_share((200, 200, 3), box, spec) == pytest.approx(0.5625, abs=0.02)  # box in a corner

    x, y, w, h = whole.box.astype(int).tolist()
    cut = np.ascontiguousarray(live_frame[y : y + h, x : x + w])
    found = detector.detect(cut)[0]
    assert image_share(cut.shape, found, spec) < 0.4
    require_context(DecodedImage(live_frame, 1.0, "jpeg"), whole, spec, 0.5)  # no exception
    with pytest.raises(FaceNotUsable) as err:
        require_context(DecodedImage(cut, 1.0, "jpeg"), found, spec, 0.5)
    assert err.value.reason == "face_fills_image"
