"""Training augmentations whose contract matters to what a model learns."""

from __future__ import annotations

import numpy as np

from training import augment


def _image(seed: int, size: int = 112) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (size, size, 3), np.uint8)


def test_capture_alike_gives_each_image_the_same_augmentation() -> None:
    real, fake = _image(1), _image(2)
    for seed in range(20):
        pair = augment.capture_alike([real, fake], np.random.default_rng(seed))
        alone = [augment.capture(img, np.random.default_rng(seed)) for img in (real, fake)]
        np.testing.assert_array_equal(pair[0], alone[0])
        np.testing.assert_array_equal(pair[1], alone[1])
    twins = augment.capture_alike([real, real.copy()], np.random.default_rng(0))
    np.testing.assert_array_equal(twins[0], twins[1])


def test_close_up_keeps_a_box_around_the_centre_and_pads_the_rest_black() -> None:
    img = _image(3)
    rng = np.random.default_rng(0)
    kept_shares = []
    for _ in range(50):
        out = augment.close_up(img, rng)
        kept = out.any(axis=2)
        rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        assert kept[box].all() and kept.sum() == kept[box].size  # one solid box
        np.testing.assert_array_equal(out[box], img[box])  # image inside, untouched
        assert kept[56, 56] and not kept[0, 0] and not kept[-1, -1]
        kept_shares.append(kept.mean())
    assert 0.05 < min(kept_shares) and max(kept_shares) < 0.75
