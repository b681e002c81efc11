"""The served face detector is libfacedetection's YuNet ported to ONNX
(`python -m training.convert_yunet`): it must return what the library itself returns,
face for face and pixel for pixel, or the models would see other crops than they were
trained on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecheck.faces import detect_raw
from training.convert_yunet import OUT, build, library_detect, read_layers
from training.data import DATA_ROOT, read_manifest


def same_detections(image: np.ndarray, conf: float) -> bool:
    ours, reference = detect_raw(image, conf), library_detect(image, conf)
    return all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))


def downscaled(image: np.ndarray, long_side: int) -> np.ndarray:
    scale = long_side / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def test_the_shipped_file_is_what_the_conversion_writes() -> None:
    assert build(read_layers()).SerializeToString() == OUT.read_bytes()


def test_same_faces_as_the_library_on_real_images() -> None:
    manifest = DATA_ROOT / "liveness" / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"developer data not found at {DATA_ROOT} (set FACECHECK_DATA)")
    samples = read_manifest(DATA_ROOT / "liveness")[::12]  # every source, both classes
    found = 0
    for sample in samples:
        image = cv2.imread(str(sample.path))
        for long_side in (256, 320):
            small = downscaled(image, long_side)
            assert same_detections(small, 0.3), f"{sample.path} at {long_side} px"
            found += len(detect_raw(small, 0.6)[0])
    assert found >= len(samples)  # the comparison is about real faces, not empty lists


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (31, 33), (128, 128), (257, 129), (480, 640)])
def test_same_output_as_the_library_on_noise_and_odd_sizes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, (*shape, 3), np.uint8)
    assert same_detections(image, 0.0)
    assert same_detections(np.full((*shape, 3), 127, np.uint8), 0.0)
    assert same_detections(image[:, ::-1], 0.3)  # a non-contiguous view
