"""Synthetic deepfake families that need no generator weights, made from a real face crop
and its 5 landmarks (eyes, nose, mouth corners, in crop coordinates).

Each family returns the fake (uint8, the input's shape) and its region (H x W float32 in
[0, 1]): the pixels it may have changed. Where the region is 0 the fake is the input, to
the bit; the crop's black padding is never touched (a model must not learn "textured
padding = fake"). `make_fake(name, ...)` gives any family by its name in FAMILIES."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from training import augment
from training.augment import Rng, _u8, color_jitter, face_mask

Fake = tuple[np.ndarray, np.ndarray]
Reconstruct = Callable[[np.ndarray], np.ndarray]


class Points(NamedTuple):
    """A face's landmarks and the lengths the families measure by."""

    eyes: np.ndarray  # 2 x 2, image left first
    nose: np.ndarray
    mouth: np.ndarray  # 2 x 2 corners
    eye_centre: np.ndarray
    mouth_centre: np.ndarray
    eye_distance: float
    angle: float  # degrees of the eye line

    @classmethod
    def of(cls, landmarks: np.ndarray) -> Points:
        marks = np.asarray(landmarks, np.float32)
        eyes, mouth = marks[:2], marks[3:5]
        across = eyes[1] - eyes[0]
        return cls(
            eyes,
            marks[2],
            mouth,
            eyes.mean(0),
            mouth.mean(0),
            max(float(np.linalg.norm(across)), 1.0),
            float(np.degrees(np.arctan2(across[1], across[0]))),
        )


def _ellipse(mask: np.ndarray, centre: np.ndarray, axes: tuple[float, float], angle: float) -> None:
    centre_px = (round(float(centre[0])), round(float(centre[1])))
    axes_px = (max(1, round(axes[0])), max(1, round(axes[1])))
    cv2.ellipse(mask, centre_px, axes_px, angle, 0, 360, 1.0, -1)


def _soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    mask = cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5))
    return mask / max(float(mask.max()), 1e-6)


def _padding(img: np.ndarray) -> np.ndarray:
    """Where the crop is black fill (a face near its photo's edge), with its 1 px soft rim."""
    return cv2.dilate((img.max(axis=2) == 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def _filled(img: np.ndarray) -> np.ndarray:
    """The padding painted in from the picture beside it: filters that read neighbours
    (resizing, smoothing, warping, a network) would otherwise pull a dark fringe in."""
    padding = _padding(img)
    return cv2.inpaint(img, padding.astype(np.uint8), 3, cv2.INPAINT_TELEA) if padding.any() else img


def _blend(img: np.ndarray, altered: np.ndarray, mask: np.ndarray) -> Fake:
    """`img` where the mask is 0, `altered` where it is 1; the padding stays as it was."""
    region = np.clip(mask, 0, 1).astype(np.float32) * ~_padding(img)
    m = region[..., None]
    return _u8(np.rint(img.astype(np.float32) * (1 - m) + altered.astype(np.float32) * m)), region


def face_ellipse(landmarks: np.ndarray, shape: tuple[int, int], rng: Rng) -> np.ndarray:
    """A soft oval from brows to chin, the paste-back mask of a face swapper."""
    p = Points.of(landmarks)
    down = p.mouth_centre - p.eye_centre
    drop = float(np.linalg.norm(down))
    mask = np.zeros(shape, np.float32)
    centre = p.eye_centre + down * rng.uniform(0.25, 0.45)
    axes = (p.eye_distance * rng.uniform(0.8, 1.0), drop * rng.uniform(1.1, 1.4))
    _ellipse(mask, centre, axes, p.angle)
    return _soften(mask, p.eye_distance * rng.uniform(0.05, 0.15))


def _paste_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: Rng) -> np.ndarray:
    """Where a generated face is pasted: the self-blend hull or an oval, equally often."""
    return face_mask(landmarks, shape, rng) if rng.random() < 0.5 else face_ellipse(landmarks, shape, rng)


# ---- low-resolution face swap ---------------------------------------------------------------

# a swapper's aligned face square (the ArcFace template inswapper uses) is this many eye
# distances across
SWAP_SQUARE_EYE_DISTANCES = 3.2


def low_res_swap(img: np.ndarray, landmarks: np.ndarray, rng: Rng) -> Fake:
    """The inswapper signature: the face rendered at 96-160 px across its aligned square
    (softer, slightly other colour, sometimes JPEG'd), scaled back up and pasted into the
    sharper frame under a soft mask."""
    h, w = img.shape[:2]
    side = SWAP_SQUARE_EYE_DISTANCES * Points.of(landmarks).eye_distance
    zoom = min(0.9, rng.uniform(96, 160) / side)
    small = cv2.resize(
        _filled(img), (max(8, round(w * zoom)), max(8, round(h * zoom))), interpolation=cv2.INTER_AREA
    )
    if rng.random() < 0.5:  # the generator's own softness
        small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.3, 0.9))
    small = color_jitter(small, rng, strength=rng.uniform(0.05, 0.25))
    if rng.random() < 0.3:
        small = augment.jpeg(small, rng, 70, 95)
    interp = cv2.INTER_LINEAR if rng.random() < 0.6 else cv2.INTER_CUBIC
    rendered = cv2.resize(small, (w, h), interpolation=interp)
    return _blend(img, rendered, _paste_mask(landmarks, (h, w), rng))


# ---- another person's eyes, nose, mouth or brows --------------------------------------------

PARTS = ("eyes", "brows", "nose", "mouth")


def part_mask(landmarks: np.ndarray, shape: tuple[int, int], part: str) -> np.ndarray:
    """A hard mask of one facial part, from the landmarks (brows extrapolated above the eyes)."""
    p = Points.of(landmarks)
    e = p.eye_distance
    down = p.mouth_centre - p.eye_centre
    mask = np.zeros(shape, np.float32)
    if part == "eyes":
        for eye in p.eyes:
            _ellipse(mask, eye, (0.32 * e, 0.19 * e), p.angle)
    elif part == "brows":
        for eye in p.eyes:
            _ellipse(mask, eye - down * 0.36, (0.36 * e, 0.13 * e), p.angle)
    elif part == "nose":
        ridge = p.nose - p.eye_centre
        _ellipse(mask, p.eye_centre + ridge * 0.7, (0.26 * e, 0.5 * float(np.linalg.norm(ridge))), p.angle)
    elif part == "mouth":
        width = float(np.linalg.norm(p.mouth[1] - p.mouth[0]))
        _ellipse(mask, p.mouth_centre, (0.5 * width + 0.12 * e, 0.22 * width + 0.1 * e), p.angle)
    else:
        raise ValueError(f"unknown part {part!r}; parts: {PARTS}")
    return mask


def align_donor(
    donor: np.ndarray, donor_landmarks: np.ndarray, landmarks: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """The donor crop moved onto the target face: the similarity transform that best maps
    the donor's 5 landmarks onto the target's."""
    matrix = _similarity(donor_landmarks, landmarks)
    return cv2.warpAffine(
        donor, matrix, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(src, np.float32), np.asarray(dst, np.float32), method=cv2.LMEDS
    )
    return matrix if matrix is not None else np.eye(2, 3, dtype=np.float64)


def _match_colour(source: np.ndarray, target: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`source` with the mean and spread of `target` in Lab over the pixels `where`."""
    src = cv2.cvtColor(source.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
    tgt = cv2.cvtColor(target.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
    s, t = src[where], tgt[where]
    if len(s) < 2:
        return source
    # spread ratio bounded: a part with teeth or glasses against one without would
    # otherwise take odd colours
    src = (src - s.mean(0)) * np.clip(t.std(0) / (s.std(0) + 1e-3), 0.6, 1.6) + t.mean(0)
    return _u8(np.rint(cv2.cvtColor(src, cv2.COLOR_Lab2BGR) * 255))


def part_splice(
    img: np.ndarray, landmarks: np.ndarray, donor: np.ndarray, donor_landmarks: np.ndarray, rng: Rng
) -> Fake:
    """One or two of another face's eyes, brows, nose or mouth, aligned by the landmarks
    (a little off, as a hand would), matched to the face's colour and blended in, by a
    feathered mask or Poisson cloning."""
    h, w = img.shape[:2]
    p = Points.of(landmarks)
    # misplacement: the donor's landmarks slightly moved before fitting
    jitter = rng.normal(0, 0.015 * Points.of(donor_landmarks).eye_distance, (1, 2))
    aligned = align_donor(_filled(donor), donor_landmarks + jitter, landmarks, (h, w))
    # only parts the donor's picture holds whole (not cut by its crop's padding)
    outside = _padding(donor)
    whole = [
        part for part in PARTS if not outside[part_mask(donor_landmarks, donor.shape[:2], part) > 0].any()
    ]
    whole = whole or list(PARTS)
    chosen = rng.choice(len(whole), size=min(len(whole), 1 + int(rng.random() < 0.3)), replace=False)
    hard = np.max([part_mask(landmarks, (h, w), whole[i]) for i in chosen], axis=0)
    mask = _soften(hard, p.eye_distance * rng.uniform(0.03, 0.08))
    aligned = _match_colour(aligned, img, hard > 0)
    if rng.random() < 0.5:
        aligned = _poisson(aligned, img, hard)
    return _blend(img, aligned, mask)


def _poisson(source: np.ndarray, target: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """`source` cloned into `target` inside the mask, gradients kept and edges matched."""
    grown = cv2.dilate((hard > 0).astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    grown[[0, -1]] = 0  # seamlessClone needs the mask off the image border
    grown[:, [0, -1]] = 0
    x, y, bw, bh = cv2.boundingRect(grown)
    if bw < 3 or bh < 3:
        return source
    return cv2.seamlessClone(source, target, grown, (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)


# ---- retouching -----------------------------------------------------------------------------


def _features(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.max([part_mask(landmarks, shape, part) for part in ("eyes", "brows", "mouth")], axis=0)


def _guided_filter(img: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter, each channel its own guide: flattens what varies less
    than sqrt(eps) (in 0-1 units) within `radius`, keeps stronger edges without sharpening them."""
    x = img.astype(np.float32) / 255

    def mean(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, (2 * radius + 1, 2 * radius + 1))

    mean_x = mean(x)
    gain = (mean(x * x) - mean_x**2) / (mean(x * x) - mean_x**2 + eps)
    return _u8(np.rint((mean(gain) * x + mean(mean_x - gain * mean_x)) * 255))


def skin_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: Rng) -> np.ndarray:
    """The face region less the eyes, brows and mouth: what a skin smoother smooths."""
    e = Points.of(landmarks).eye_distance
    features = _soften(cv2.dilate(_features(landmarks, shape), np.ones((3, 3), np.uint8)), 0.05 * e)
    return face_mask(landmarks, shape, rng) * (1 - features)


def _bump(xx: np.ndarray, yy: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """(1 - r^2)^2 inside `radius` of `centre`, 0 outside: a displacement with an edge."""
    r2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / radius**2
    return np.where(r2 < 1, (1 - r2) ** 2, 0).astype(np.float32)


def _warp(img: np.ndarray, landmarks: np.ndarray, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Eyes enlarged and/or cheeks pulled in by a smooth displacement field around the
    landmarks; the warped image and where the field is not zero."""
    h, w = img.shape[:2]
    p = Points.of(landmarks)
    e = p.eye_distance
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy, support = (np.zeros((h, w), np.float32) for _ in range(3))
    enlarge = slim = True
    if rng.random() >= 0.4:  # one of the two
        enlarge = rng.random() < 0.5
        slim = not enlarge
    if enlarge:  # each pixel samples nearer the eye centre: the eye grows
        strength = rng.uniform(0.1, 0.25)
        for eye in p.eyes:
            k = _bump(xx, yy, eye, 0.45 * e)
            dx -= (xx - eye[0]) * strength * k
            dy -= (yy - eye[1]) * strength * k
            support = np.maximum(support, k)
    if slim:  # each pixel samples further out near the jaw: the outline moves in
        down = p.mouth_centre - p.eye_centre
        across = (p.eyes[1] - p.eyes[0]) / e
        centre = p.eye_centre + down * 0.6
        pull = rng.uniform(0.04, 0.09) * e
        for side in (-1, 1):
            for height, reach in ((0.7, 0.95), (1.2, 0.75)):  # cheek, jaw
                point = p.eye_centre + down * height + side * across * reach * e
                outward = (point - centre) / (np.linalg.norm(point - centre) + 1e-6)
                k = _bump(xx, yy, point, 0.55 * e)
                dx += outward[0] * pull * k
                dy += outward[1] * pull * k
                support = np.maximum(support, k)
    warped = cv2.remap(img, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return warped, support


def _beauty_tone(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A beauty filter's look: lifted mid-tones, more saturation, a warm or pink cast."""
    x = 255.0 * (img.astype(np.float32) / 255.0) ** rng.uniform(0.75, 0.92)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(1.05, 1.3)
    x = x * np.array([rng.uniform(0.96, 1.0), rng.uniform(0.97, 1.0), rng.uniform(1.0, 1.05)], np.float32)
    return _u8(np.rint(x))


def retouch(img: np.ndarray, landmarks: np.ndarray, rng: Rng) -> Fake:
    """A beauty app's edit: skin smoothed (bilateral or guided filter over the skin, not
    the eyes, brows or mouth), and sometimes eyes enlarged or the face slimmed, and a brighter,
    more saturated tone over the face."""
    h, w = img.shape[:2]
    e = Points.of(landmarks).eye_distance
    skin = skin_mask(landmarks, (h, w), rng)
    filled = _filled(img)
    if rng.random() < 0.5:
        # dermabrasion: bilateral, then a light blur against its staircase edges
        smooth = cv2.bilateralFilter(filled, 0, rng.uniform(40, 80), rng.uniform(0.04, 0.08) * e)
        smooth = cv2.GaussianBlur(smooth, (0, 0), rng.uniform(0.6, 1.2))
    else:
        smooth = _guided_filter(filled, round(rng.uniform(0.04, 0.08) * e), rng.uniform(0.02, 0.05) ** 2)
    out, _ = _blend(filled, smooth, skin * rng.uniform(0.7, 1.0))
    region = skin
    if rng.random() < 0.6:
        out, support = _warp(out, landmarks, rng)
        region = np.maximum(region, support)
    if rng.random() < 0.6:
        tone_mask = face_mask(landmarks, (h, w), rng)
        out, _ = _blend(out, _beauty_tone(out, rng), tone_mask)
        region = np.maximum(region, tone_mask)
    region = np.clip(region, 0, 1).astype(np.float32) * ~_padding(img)
    return np.where(region[..., None] > 0, out, img), region


# ---- a decoder's up-sampling traces ---------------------------------------------------------


def decoder_traces(img: np.ndarray, landmarks: np.ndarray, rng: Rng, reconstruct: Reconstruct) -> Fake:
    """A generator's fingerprints: the crop passed through an autoencoder's decoder
    (`reconstruct`, e.g. training.autoencoder.load_reconstruct()), whole (an entirely
    generated face) or blended into the face region (a generated face pasted in)."""
    rendered = reconstruct(_filled(img))
    if rendered.shape != img.shape or rendered.dtype != np.uint8:
        raise ValueError(f"reconstruct gave {rendered.shape} {rendered.dtype} for {img.shape} uint8")
    if rng.random() < 0.3:
        return _blend(img, rendered, np.ones(img.shape[:2], np.float32))
    return _blend(img, rendered, _paste_mask(landmarks, img.shape[:2], rng))


# ---- registry -------------------------------------------------------------------------------

FAMILIES: dict[str, Callable[..., Fake]] = {
    "self_blend": augment.self_blend,
    "low_res_swap": low_res_swap,
    "part_splice": part_splice,
    "retouch": retouch,
    "decoder_traces": decoder_traces,
}
# what a family needs beyond the face, its landmarks and the rng
NEEDS = {"part_splice": ("donor", "donor_landmarks"), "decoder_traces": ("reconstruct",)}


def make_fake(
    name: str,
    img: np.ndarray,
    landmarks: np.ndarray,
    rng: Rng,
    donor: np.ndarray | None = None,
    donor_landmarks: np.ndarray | None = None,
    reconstruct: Reconstruct | None = None,
) -> Fake:
    """A fake of family `name`: (image, region). Extra inputs a family does not use are ignored."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; families: {sorted(FAMILIES)}")
    given = {"donor": donor, "donor_landmarks": donor_landmarks, "reconstruct": reconstruct}
    extras = {key: given[key] for key in NEEDS.get(name, ())}
    missing = [key for key, value in extras.items() if value is None]
    if missing:
        raise ValueError(f"{name} needs {', '.join(missing)}")
    return FAMILIES[name](img, landmarks, rng=rng, **extras)
