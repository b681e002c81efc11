"""Synthetic fake families (training.fakes) on real face crops, and the autoencoder whose
decoder traces one of them carries (training.autoencoder)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facecheck.faces import YuNetDetector
from facecheck.images import decode_bytes
from facecheck.orientation import find_upright_faces
from facecheck.preprocess import CropSpec, crop_face, landmarks_in_crop
from training import autoencoder, fakes
from training.data import DATA_ROOT

DEEPFAKE_CROP = CropSpec(scale=1.3, size=260)  # training.train.deepfake_crop() for Lite2
# val real faces: two DFDC video frames (tight, so their crops carry black padding) and
# two FFHQ portraits
FACES = (
    "deepfake/images/dfdc/real/v_aamjfukxwp.jpg",
    "deepfake/images/dfdc/real/v_aayfryxljh.jpg",
    "deepfake/images/sg140k/real/00006.jpg",
    "deepfake/images/sg140k/real/00010.jpg",
)
SEEDS = range(4)


@pytest.fixture(scope="module")
def faces() -> list[tuple[np.ndarray, np.ndarray]]:
    """(crop, landmarks) of each face, through the serving detector and crop."""
    if not all((DATA_ROOT / relative).exists() for relative in FACES):
        pytest.skip(f"developer data not found at {DATA_ROOT} (set FACECHECK_DATA)")
    detector = YuNetDetector()
    out = []
    for relative in FACES:
        image, found = find_upright_faces(decode_bytes((DATA_ROOT / relative).read_bytes()).pixels, detector)
        out.append((crop_face(image, found[0], DEEPFAKE_CROP), landmarks_in_crop(found[0], DEEPFAKE_CROP)))
    return out


def blocky(img: np.ndarray) -> np.ndarray:
    """A stand-in decoder: half resolution, back up by pixel repetition."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def fakes_of(name: str, faces, seeds=SEEDS, reconstruct=blocky):
    """(face index, original, fake, region) for every face and seed; the donor is the next face."""
    for i, (img, marks) in enumerate(faces):
        donor, donor_marks = faces[(i + 1) % len(faces)]
        for seed in seeds:
            rng = np.random.default_rng(seed)
            fake, region = fakes.make_fake(name, img, marks, rng, donor, donor_marks, reconstruct)
            yield i, img, fake, region


def grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)


def laplacian_energy(img: np.ndarray, where: np.ndarray) -> float:
    return float((cv2.Laplacian(grey(img), cv2.CV_32F) ** 2)[where].mean())


def away_from_padding(img: np.ndarray) -> np.ndarray:
    """Content pixels whose Laplacian does not reach the padding's edge."""
    return cv2.erode((img.max(axis=2) > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0


@pytest.mark.parametrize("name", sorted(fakes.FAMILIES))
def test_a_fake_changes_its_region_and_nothing_else(name: str, faces) -> None:
    for _, img, fake, region in fakes_of(name, faces):
        assert fake.shape == img.shape and fake.dtype == np.uint8
        assert region.shape == img.shape[:2] and region.dtype == np.float32
        assert 0 <= region.min() and region.max() <= 1
        outside = region == 0
        np.testing.assert_array_equal(fake[outside], img[outside])
        inside = region > 0.5
        assert inside.mean() > 0.01
        assert np.abs(fake.astype(np.float32) - img)[inside].mean() > 1.0


@pytest.mark.parametrize("name", sorted(fakes.FAMILIES))
def test_a_fake_is_the_same_for_the_same_seed(name: str, faces) -> None:
    first = list(fakes_of(name, faces, seeds=[7]))
    again = list(fakes_of(name, faces, seeds=[7]))
    other = list(fakes_of(name, faces, seeds=[8]))
    for (_, _, fake, region), (_, _, fake2, region2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(fake, fake2)
        np.testing.assert_array_equal(region, region2)
    assert any(not np.array_equal(a[2], b[2]) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("name", ["low_res_swap", "part_splice", "retouch", "decoder_traces"])
def test_the_crops_black_padding_stays_black(name: str, faces) -> None:
    for _, img, fake, region in fakes_of(name, faces):
        padding = img.max(axis=2) == 0
        assert (fake[padding] == 0).all() and (region[padding] == 0).all()


def test_low_res_swap_removes_fine_detail_inside_the_region(faces) -> None:
    ratios = []
    for _, img, fake, region in fakes_of("low_res_swap", faces):
        inside = (region > 0.5) & away_from_padding(img)
        ratios.append(laplacian_energy(fake, inside) / laplacian_energy(img, inside))
    assert max(ratios) < 0.9 and np.median(ratios) < 0.5, ratios


def _band(img: np.ndarray) -> np.ndarray:
    g = grey(img)
    return cv2.GaussianBlur(g, (0, 0), 1.5) - cv2.GaussianBlur(g, (0, 0), 5.0)


def _likeness(fake: np.ndarray, reference: np.ndarray, where: np.ndarray) -> float:
    """The best correlation of the two images' mid frequencies over `where`, the fake moved by
    up to 4 px (a splice is placed a little off on purpose)."""
    b = _band(reference)[where]
    b = b - b.mean()
    best = -1.0
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            a = np.roll(_band(fake), (dy, dx), (0, 1))[where]
            a = a - a.mean()
            best = max(best, float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-6)))
    return best


def test_part_splice_puts_the_donors_part_in_place(faces) -> None:
    gaps = []
    for i, img, fake, region in fakes_of("part_splice", faces):
        marks, (donor_img, donor_marks) = faces[i][1], faces[(i + 1) % len(faces)]
        aligned = fakes.align_donor(donor_img, donor_marks, marks, img.shape[:2])
        inside = region > 0.5
        gaps.append(_likeness(fake, aligned, inside) - _likeness(fake, img, inside))
    # mostly the donor's: a donor's part can resemble the face's own (two smiles)
    assert np.mean(np.array(gaps) > 0) >= 0.8 and np.mean(gaps) > 0.25, gaps


def test_retouch_smooths_the_skin(faces) -> None:
    ratios = []
    for i, img, fake, region in fakes_of("retouch", faces):
        marks = faces[i][1]
        size = int(0.2 * fakes.Points.of(marks).eye_distance)
        features = np.max([fakes.part_mask(marks, img.shape[:2], p) for p in ("eyes", "brows", "mouth")], 0)
        features = cv2.dilate(features, np.ones((size, size), np.uint8)) > 0
        skin = (region > 0.5) & ~features & away_from_padding(img)
        ratios.append(laplacian_energy(fake, skin) / laplacian_energy(img, skin))
    assert max(ratios) < 0.95 and np.median(ratios) < 0.75, ratios


def test_make_fake_names_every_family_and_asks_for_what_it_needs(faces) -> None:
    img, marks = faces[2]
    assert set(fakes.FAMILIES) == {"self_blend", "low_res_swap", "part_splice", "retouch", "decoder_traces"}
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="donor"):
        fakes.make_fake("part_splice", img, marks, rng)
    with pytest.raises(ValueError, match="reconstruct"):
        fakes.make_fake("decoder_traces", img, marks, rng)
    with pytest.raises(ValueError, match="unknown family"):
        fakes.make_fake("stylegan", img, marks, rng)
    fake, _ = fakes.make_fake("retouch", img, marks, np.random.default_rng(1), donor=img, reconstruct=blocky)
    np.testing.assert_array_equal(fake, fakes.retouch(img, marks, np.random.default_rng(1))[0])


def test_decoder_traces_from_a_trained_exported_autoencoder(faces, tmp_path: Path) -> None:
    """A few steps of the real trainer on synthetic images, exported to ONNX and loaded back
    through the service's session: the fake carries the network's reconstruction."""
    rng = np.random.default_rng(0)
    smooth = [cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), np.uint8), (0, 0), 2) for _ in range(6)]
    model = autoencoder.train(np.stack(smooth), steps=3, batch=4, patch=32)
    path = tmp_path / "autoencoder.onnx"
    assert autoencoder.export(model, path) < 1e-4
    reconstruct = autoencoder.load_reconstruct(path, threads=1)
    for img, marks in faces:
        rendered = reconstruct(img)  # 260 px: not a multiple of the network's stride
        assert rendered.shape == img.shape and rendered.dtype == np.uint8
        for seed in SEEDS:
            fake, region = fakes.decoder_traces(img, marks, np.random.default_rng(seed), reconstruct)
            outside, inside = region == 0, region > 0.5
            np.testing.assert_array_equal(fake[outside], img[outside])
            assert np.abs(fake.astype(np.float32) - img)[inside].mean() > 3.0
