"""Training augmentations whose contract matters to what a model learns."""

from __future__ import annotations

import numpy as np
import pytest

from training import augment


def _image(seed: int, size: int = 112) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (size, size, 3), np.uint8)


def test_capture_alike_gives_each_image_the_same_augmentation() -> None:
    real, fake = _image(1), _image(2)
    mask = np.random.default_rng(5).random((56, 56)).astype(np.float32)
    for seed in range(20):
        pair = augment.capture_alike([real, fake], np.random.default_rng(seed), [None, mask])
        alone = [
            augment.capture_with_mask(img, m, np.random.default_rng(seed))
            for img, m in ((real, None), (fake, mask))
        ]
        np.testing.assert_array_equal(pair[0][0], alone[0][0])
        np.testing.assert_array_equal(pair[1][0], alone[1][0])
        np.testing.assert_array_equal(pair[1][1], alone[1][1])
        assert pair[0][1] is None
    twins = augment.capture_alike([real, real.copy()], np.random.default_rng(0))
    np.testing.assert_array_equal(twins[0][0], twins[1][0])


def test_colour_cast_maps_every_pixel_by_one_colour_matrix_and_moves_nothing() -> None:
    img = np.random.default_rng(4).integers(40, 140, (64, 64, 3), np.uint8)  # far from clipping
    pixels = img.reshape(-1, 3).astype(np.float64)
    red_to_blue = []
    for seed in range(30):
        out = augment.colour_cast(img, np.random.default_rng(seed)).reshape(-1, 3).astype(np.float64)
        matrix, *_ = np.linalg.lstsq(pixels, out, rcond=None)
        unclipped = (out > 0).all(axis=1) & (out < 255).all(axis=1)
        assert unclipped.mean() > 0.9
        # the same 3x3 colour map at every pixel, up to uint8 rounding: a tint, not a warp
        assert np.abs(pixels[unclipped] @ matrix - out[unclipped]).max() < 1.5
        red_to_blue.append(out[:, 2].mean() / out[:, 0].mean())
    assert max(red_to_blue) / min(red_to_blue) > 1.5  # strong casts, both ways


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


def test_reframe_keeps_the_face_box_and_at_least_the_share_the_service_judges() -> None:
    img = _image(4, 224)
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(200):
        out = augment.reframe(img, rng, box_side=112, min_share=0.5)
        kept = out.any(axis=2)
        rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        assert kept[box].all() and kept.sum() == kept[box].size  # one solid rectangle
        np.testing.assert_array_equal(out[box], img[box])
        assert kept[56:168, 56:168].all()  # the face box is never cut
        shares.append(kept.mean())
    assert min(shares) >= 0.5 and max(shares) > 0.85 and np.median(shares) < 0.75


def test_capture_moves_a_mask_with_its_image() -> None:
    """Flip and affine move the mask (at its own, smaller size) as they move the image; the
    photometric steps leave it alone. A mask never changes the image's draws."""
    img = np.full((224, 224, 3), 40, np.uint8)
    img[60:120, 30:90] = 230  # a bright square off the centre
    mask = np.zeros((56, 56), np.float32)
    mask[15:30, 7:22] = 1.0  # the same square at a quarter of the size
    for seed in range(30):
        alone = augment.capture(img, np.random.default_rng(seed))
        moved, moved_mask = augment.capture_with_mask(img, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(moved, alone)
        assert moved_mask is not None and moved_mask.shape == (56, 56)
        grey = moved.mean(axis=2)
        bright = np.argwhere(grey > (grey.max() + grey.min()) / 2).mean(axis=0) / 4
        marked = np.argwhere(moved_mask > 0.5).mean(axis=0)
        assert np.abs(bright - marked).max() < 1.5, seed


def test_self_blend_returns_where_it_blended() -> None:
    rng = np.random.default_rng(3)
    img = _image(4, 224)
    landmarks = np.array([[80, 90], [144, 90], [112, 125], [88, 160], [136, 160]], np.float32)
    blended, region = augment.self_blend(img, landmarks, rng)
    assert region.shape == (224, 224) and region.max() == pytest.approx(1.0)
    changed = np.abs(blended.astype(int) - img).max(axis=2) > 0
    assert region[changed].min() > 0  # no pixel changed outside the region
    assert region[112, 112] > 0.5 and region[5, 5] == 0


def test_cut_out_puts_the_attack_face_over_the_scene_and_keeps_the_scene_around_it() -> None:
    attack, scene = _image(5, 224), _image(6, 224)
    rng = np.random.default_rng(0)
    for _ in range(50):
        out = augment.cut_out(attack, scene, rng, box_side=112)
        np.testing.assert_array_equal(out[90:134, 90:134], attack[90:134, 90:134])  # the face
        frame = np.ones((224, 224), bool)
        frame[4:-4, 4:-4] = False
        assert (out[frame] == scene[frame]).all(axis=1).mean() > 0.5  # the scene around it


def test_tilt_turns_about_the_centre_by_15_to_60_degrees_either_way_and_fills_the_corners() -> None:
    img = np.full((224, 224, 3), 100, np.uint8)
    img[110:114, 40:184] = 250  # a level bar through the centre
    angles = []
    for seed in range(40):
        out = augment.tilt(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.min() > 0  # no black corners
        ys, xs = np.nonzero(out[..., 0] > 200)
        assert abs(xs.mean() - 111.5) < 2 and abs(ys.mean() - 111.5) < 2  # turned about the centre
        direction = np.linalg.svd(np.stack([xs - xs.mean(), ys - ys.mean()]), full_matrices=False)[0][:, 0]
        angles.append(np.degrees(np.arctan(direction[1] / direction[0])))
    magnitudes = np.abs(angles)
    assert magnitudes.min() > 14 and magnitudes.max() < 61
    assert min(angles) < 0 < max(angles)


def test_low_light_adds_grain_keeps_the_exposure_near_and_moves_nothing() -> None:
    flat = np.full((96, 96, 3), 120, np.uint8)
    scene = np.full((96, 96, 3), 40, np.uint8)
    scene[30:50, 20:60] = 220  # a bright patch off the centre
    ys, xs = np.nonzero(scene[..., 0] > 130)
    grain = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out = augment.low_light(flat, rng)
        assert out.shape == flat.shape and out.dtype == np.uint8
        assert 0.8 * 120 < out.mean() < 1.05 * 120  # the camera brings the level back up
        grain.append(out.astype(np.float64).std())
        lit = augment.low_light(scene, rng)
        ly, lx = np.nonzero(lit[..., 0] > 130)
        assert abs(ly.mean() - ys.mean()) < 0.5 and abs(lx.mean() - xs.mean()) < 0.5
    assert min(grain) > 1.0 and max(grain) > 2 * min(grain)  # always grainy, by varying amounts
