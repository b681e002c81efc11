"""Augmentations on uint8 BGR crops: capture-condition jitter shared by both models,
synthetic presentation attacks (print, replay) for liveness, and Self-Blended
Images (Shiohara & Yamasaki, CVPR 2022) for deepfake.

All functions take and return HxWx3 uint8 BGR arrays and draw from the `rng` given."""

from __future__ import annotations

import cv2
import numpy as np

Rng = np.random.Generator


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, rng: Rng, lo: int = 30, hi: int = 95) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(lo, hi + 1))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def rescale(img: np.ndarray, rng: Rng, lo: float = 0.3, hi: float = 0.9) -> np.ndarray:
    """Down- then up-scale: a lower-resolution camera or a smaller face."""
    h, w = img.shape[:2]
    f = rng.uniform(lo, hi)
    small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    interp = [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST][rng.integers(3)]
    return cv2.resize(small, (w, h), interpolation=interp)


def _tint(x: np.ndarray, channel_gains: np.ndarray, saturation: float) -> np.ndarray:
    """White balance (a gain per channel), then saturation, on a float image."""
    x = x * channel_gains
    grey = x.mean(axis=2, keepdims=True)
    return grey + (x - grey) * saturation


def color_jitter(img: np.ndarray, rng: Rng, strength: float = 1.0) -> np.ndarray:
    x = img.astype(np.float32)
    x = x * rng.uniform(1 - 0.35 * strength, 1 + 0.35 * strength)  # brightness
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength) + mean  # contrast
    x = _tint(
        x,
        rng.uniform(1 - 0.08 * strength, 1 + 0.08 * strength, size=3),
        rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength),
    )
    gamma = rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength)
    return _u8(255.0 * (np.clip(x, 0, 255) / 255.0) ** gamma)


def colour_cast(img: np.ndarray, rng: Rng, max_gain: float = 0.4) -> np.ndarray:
    """A strong tint over the whole crop: light bounced off a coloured wall, a camera's white
    balance gone wrong. Each channel is scaled by up to exp(+-max_gain), then the saturation by
    up to the same factor; nothing moves. Given to every class alike, so that a room's colour
    carries no label (our model rejected live people in red rooms, models/liveness.md)."""
    gains = np.exp(rng.uniform(-max_gain, max_gain, size=3))
    return _u8(_tint(img.astype(np.float32), gains, np.exp(rng.uniform(-max_gain, max_gain))))


def blur(img: np.ndarray, rng: Rng, max_sigma: float = 1.5) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, max_sigma))


def noise(img: np.ndarray, rng: Rng, max_sigma: float = 8.0) -> np.ndarray:
    return _u8(img + rng.normal(0, rng.uniform(1, max_sigma), img.shape))


def sharpen(img: np.ndarray, rng: Rng) -> np.ndarray:
    soft = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
    return _u8(
        cv2.addWeighted(
            img.astype(np.float32),
            1 + rng.uniform(0.3, 1.0),
            soft.astype(np.float32),
            -rng.uniform(0.3, 1.0),
            0,
        )
    )


def _affine_matrix(shape: tuple[int, int], angle: float, zoom: float, shift: np.ndarray) -> np.ndarray:
    h, w = shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += shift * (w, h)
    return m


def small_affine(
    img: np.ndarray,
    mask: np.ndarray | None,
    rng: Rng,
    shift: float = 0.04,
    zoom: float = 0.06,
    deg: float = 6,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The same small rotation, zoom and shift (relative to each one's size) of an image and its mask."""
    angle, scale = rng.uniform(-deg, deg), rng.uniform(1 - zoom, 1 + zoom)
    offset = rng.uniform(-shift, shift, 2)

    def move(a: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(a, _affine_matrix(a.shape[:2], angle, scale, offset), a.shape[1::-1])

    return move(img), None if mask is None else move(mask)


def capture(img: np.ndarray, rng: Rng) -> np.ndarray:
    """Camera, lighting and transport variation applied to every class alike, so that
    resolution, sharpness, codec and brightness carry no label."""
    return capture_with_mask(img, None, rng)[0]


def capture_with_mask(
    img: np.ndarray, mask: np.ndarray | None, rng: Rng
) -> tuple[np.ndarray, np.ndarray | None]:
    """`capture`, with the same draws; a manipulation mask (any size, float32) is moved by
    the same flip and affine as the image."""
    if rng.random() < 0.5:
        img = img[:, ::-1].copy()
        mask = None if mask is None else mask[:, ::-1].copy()
    if rng.random() < 0.3:
        img, mask = small_affine(img, mask, rng)
    if rng.random() < 0.8:
        img = color_jitter(img, rng)
    if rng.random() < 0.4:
        img = rescale(img, rng, 0.35, 0.95)
    if rng.random() < 0.2:
        img = blur(img, rng)
    elif rng.random() < 0.15:
        img = sharpen(img, rng)
    if rng.random() < 0.2:
        img = noise(img, rng)
    if rng.random() < 0.6:
        img = jpeg(img, rng)
    return img, mask


def capture_alike(
    images: list[np.ndarray], rng: Rng, masks: list[np.ndarray | None] | None = None
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """`capture_with_mask` with the same draws for every image (same-shaped images: the same
    flip, jitter, scaling and JPEG quality)."""
    state = rng.bit_generator.state
    out = []
    for img, mask in zip(images, masks or [None] * len(images), strict=True):
        rng.bit_generator.state = state
        out.append(capture_with_mask(img, mask, rng))
    return out


def close_up(img: np.ndarray, rng: Rng) -> np.ndarray:
    """The face filling the camera frame (a close-up selfie, or a pre-cut face crop): of a
    context crop centred on the face, only a box around the face is image, the rest is the
    serving crop's black padding. Given to every class alike, so padding carries no label."""
    h, w = img.shape[:2]
    cx, cy = w * (0.5 + rng.uniform(-0.05, 0.05)), h * (0.5 + rng.uniform(-0.05, 0.08))
    half_w, half_h = w * rng.uniform(0.12, 0.4), h * rng.uniform(0.18, 0.45)
    x0, x1 = max(0, int(cx - half_w)), min(w, int(cx + half_w))
    y0, y1 = max(0, int(cy - half_h)), min(h, int(cy + half_h))
    out = np.zeros_like(img)
    out[y0:y1, x0:x1] = img[y0:y1, x0:x1]
    return out


def reframe(img: np.ndarray, rng: Rng, box_side: int, min_share: float) -> np.ndarray:
    """The photo cut closer around the face (a close selfie, or an attack cut down to lose
    its paper edge or bezel): of a context crop centred on a face box of `box_side` px, a
    rectangle that holds the box and at least `min_share` of the crop stays image, the rest
    becomes the serving crop's black padding. Given to every class alike, so neither the
    padding nor the missing context carries a label."""
    size = img.shape[0]
    room = (size - box_side) / 2  # context on each side of the face box
    for _ in range(20):
        left, right, top, bottom = rng.uniform(0, room, size=4)
        if (size - left - right) * (size - top - bottom) >= min_share * size * size:
            break
    else:
        return img
    out = np.zeros_like(img)
    y0, y1, x0, x1 = int(top), size - int(bottom), int(left), size - int(right)
    out[y0:y1, x0:x1] = img[y0:y1, x0:x1]
    return out


def tilt(img: np.ndarray, rng: Rng, lo: float = 15.0, hi: float = 60.0) -> np.ndarray:
    """The face turned about the crop's centre (the face box's) by `lo`-`hi` degrees either
    way, the corners filled by reflection: a phone held at an angle whose face the detector's
    landmarks still read as level, so the serving crop is not turned upright (`piiyush`'s
    selfies, models/liveness.md). Given to every class alike, so that tilt carries no label."""
    h, w = img.shape[:2]
    angle = rng.uniform(lo, hi) * (1 if rng.random() < 0.5 else -1)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def low_light(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A dim room as a phone's auto-exposure shows it: the light cut to 10-40 %, shot and read
    noise added at that level (brighter pixels noisier, each channel its own), then the gain
    brought back up, the noise smoothed a little as a camera's denoiser does. Given to every
    class alike, so that grain and dullness carry no label (`piiyush`'s dim home selfies,
    models/liveness.md)."""
    exposure = rng.uniform(0.1, 0.4)
    linear = (img.astype(np.float32) / 255.0) ** 2.2 * exposure
    photons = 400.0 * rng.uniform(0.5, 2.0)  # full-well scale: fewer photons, more shot noise
    linear = linear + rng.normal(0, 1, img.shape).astype(np.float32) * (
        np.sqrt(linear / photons) + rng.uniform(0.001, 0.004)
    )
    gain = rng.uniform(0.7, 1.0) / exposure
    out = np.clip(linear * gain, 0, 1) ** (1 / 2.2) * 255.0
    return cv2.GaussianBlur(_u8(out), (0, 0), rng.uniform(0.3, 1.0))


# --- presentation attacks -------------------------------------------------------------


def cut_out(attack: np.ndarray, scene: np.ndarray, rng: Rng, box_side: int) -> np.ndarray:
    """A printed or replayed face cut out and held in front of a real scene: the attack
    crop's face region (a rectangle or an oval 1.05-1.7x the face box, edges hard or
    softened) over a bona fide crop of the same size, whose own face it covers. Without
    it the model judged mostly the surroundings: cut-out prints over a live frame passed
    about three times in four (models/liveness.md)."""
    size = attack.shape[0]
    side = box_side * rng.uniform(1.05, 1.7)
    half_w, half_h = (min(0.42 * size, side / 2 * rng.uniform(0.85, 1.15)) for _ in range(2))
    cx, cy = size / 2 + rng.uniform(-0.06, 0.06) * side, size / 2 + rng.uniform(-0.06, 0.06) * side
    mask = np.zeros((size, size), np.float32)
    if rng.random() < 0.5:
        cv2.ellipse(mask, (round(cx), round(cy)), (round(half_w), round(half_h)), 0, 0, 360, 1.0, -1)
    else:
        top_left = (round(cx - half_w), round(cy - half_h))
        cv2.rectangle(mask, top_left, (round(cx + half_w), round(cy + half_h)), 1.0, -1)
    if rng.random() < 0.5:
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 3.0))
    m = mask[..., None]
    return _u8(np.rint(scene.astype(np.float32) * (1 - m) + attack.astype(np.float32) * m))


def _glare(img: np.ndarray, rng: Rng, max_gain: float) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.6) * h
    blob = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))
    return _u8(img + (rng.uniform(0.2, 1.0) * max_gain * 255 * blob)[..., None])


def _border(img: np.ndarray, rng: Rng, colour: tuple[int, int, int], max_frac: float) -> np.ndarray:
    """A band of paper edge or screen bezel along one to three sides."""
    out = img.copy()
    h, w = img.shape[:2]
    for side in rng.choice(4, size=int(rng.integers(1, 4)), replace=False):
        t = int(rng.uniform(0.03, max_frac) * (h if side < 2 else w))
        c = np.clip(np.array(colour) + rng.normal(0, 12, 3), 0, 255)
        if side == 0:
            out[:t] = c
        elif side == 1:
            out[h - t :] = c
        elif side == 2:
            out[:, :t] = c
        else:
            out[:, w - t :] = c
    return out


def print_attack(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A face printed on paper and re-captured: halftone, reduced gamut, paper
    texture, defocus, specular sheen, sometimes the paper's edge."""
    h, w = img.shape[:2]
    x = img.astype(np.float32)
    if rng.random() < 0.7:  # halftone: threshold each ink against a rotated dot screen
        period = rng.uniform(2.0, 4.5)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        screens = []
        for angle in np.deg2rad([15, 75, 0]) + rng.uniform(0, np.pi / 4):
            u = xx * np.cos(angle) + yy * np.sin(angle)
            v = -xx * np.sin(angle) + yy * np.cos(angle)
            screens.append((np.cos(2 * np.pi * u / period) * np.cos(2 * np.pi * v / period) + 1) * 127.5)
        dots = np.where(x > np.stack(screens, axis=2), 255.0, 0.0)
        dots = cv2.GaussianBlur(dots, (0, 0), rng.uniform(0.5, 1.2))
        x = x * (1 - (mix := rng.uniform(0.15, 0.5))) + dots * mix
    # reduced gamut: ink never reaches paper white or true black, colours desaturate
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.55, 0.95)
    black, white = rng.uniform(10, 45), rng.uniform(200, 245)
    x = black + x / 255.0 * (white - black)
    x = x * np.array([rng.uniform(0.9, 1.0), rng.uniform(0.95, 1.02), rng.uniform(0.98, 1.06)])
    # paper texture: fine grain and low-frequency unevenness
    grain = rng.normal(0, rng.uniform(2, 7), (h, w, 1))
    lowfreq = cv2.resize(rng.normal(0, 1, (6, 6)).astype(np.float32), (w, h))[..., None]
    x = x + grain + lowfreq * rng.uniform(2, 10)
    out = _u8(x)
    if rng.random() < 0.7:
        out = blur(out, rng, 1.8)
    if rng.random() < 0.5:
        out = _glare(out, rng, 0.5)
    if rng.random() < 0.3:
        out = _border(out, rng, (235, 235, 235), 0.15)
    return out


def replay_attack(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A face shown on a phone or monitor and re-captured: subpixel grid resampled
    into moire, screen gamma and colour cast, glare, sometimes the bezel."""
    h, w = img.shape[:2]
    # show the image on an RGB-stripe pixel grid, then re-sample it with a slight
    # rotation and scale mismatch: aliasing produces real moire
    k = int(rng.integers(3, 6))
    big = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    stripe = np.zeros((1, k, 3), np.float32)
    for c, channel in enumerate((2, 1, 0)):  # BGR storage, R G B subpixels
        stripe[0, c * k // 3 : (c + 1) * k // 3, channel] = 1.0
    grid = np.tile(stripe, (h * k, w, 1))
    grid[np.arange(h * k) % k == k - 1] *= rng.uniform(0.2, 0.7)  # dark row gaps
    big = big * (grid * rng.uniform(0.6, 1.0) + (1 - rng.uniform(0.6, 1.0)))
    m = cv2.getRotationMatrix2D((w * k / 2, h * k / 2), rng.uniform(-4, 4), rng.uniform(0.97, 1.05))
    big = cv2.warpAffine(big, m, (w * k, h * k), borderMode=cv2.BORDER_REFLECT)
    x = cv2.resize(big, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_AREA)
    x = x * (float(np.percentile(img, 99)) / max(1.0, float(np.percentile(x, 99))))
    strength = rng.uniform(0.1, 0.45)  # real moire is faint; the screen's tone carries more
    x = img.astype(np.float32) * (1 - strength) + x * strength
    # screen tone: gamma, cast (cool monitor or warm night-mode phone), lifted blacks
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** rng.uniform(0.7, 1.3)
    cast = rng.choice([np.array([1.12, 1.04, 0.9]), np.array([0.85, 0.97, 1.12]), np.ones(3)])
    x = x * cast * rng.uniform(0.95, 1.05, 3)
    x = rng.uniform(5, 35) + x * rng.uniform(0.75, 0.95)
    out = _u8(x)
    if rng.random() < 0.5:
        out = _glare(out, rng, 0.6)
    if rng.random() < 0.3:
        out = _border(out, rng, (15, 15, 15), 0.2)
    return out


def _keep_padding(attacked: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Crops of faces near an image edge carry black padding: keep it black, or the
    model learns 'textured padding = attack'."""
    valid = cv2.dilate((original.max(axis=2) > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
    return attacked * valid[..., None]


def synthetic_attack(img: np.ndarray, rng: Rng, kind: str) -> np.ndarray:
    attack = print_attack if kind == "print" else replay_attack
    return _keep_padding(attack(img, rng), img)


# --- self-blended images ----------------------------------------------------------------


def face_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: Rng) -> np.ndarray:
    """A soft face-region mask from 5 landmarks: a hull over the eyes, nose, mouth
    and points extrapolated to brows, cheeks and chin, deformed and blurred."""
    h, w = shape
    eyes, nose, mouth = landmarks[:2], landmarks[2], landmarks[3:5]
    eye_c, mouth_c = eyes.mean(0), mouth.mean(0)
    down = mouth_c - eye_c  # eye-to-mouth vector
    across = eyes[1] - eyes[0]
    up = eye_c - down * rng.uniform(0.5, 0.9)
    chin = mouth_c + down * rng.uniform(0.4, 0.8)
    cheek = rng.uniform(0.6, 1.0)
    points = np.array(
        [
            *eyes,
            nose,
            *mouth,
            up,
            chin,
            up - across * cheek * 0.8,
            up + across * cheek * 0.8,
            eye_c - across * cheek,
            eye_c + across * cheek,
            mouth_c - across * cheek * 0.9,
            mouth_c + across * cheek * 0.9,
            chin - across * 0.5,
            chin + across * 0.5,
        ],
        np.float32,
    )
    scale = float(np.linalg.norm(across)) + 1.0
    points += rng.normal(0, 0.08 * scale, points.shape)  # elastic-ish deformation
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(points.astype(np.int32)), 1.0)
    if rng.random() < 0.5:
        kernel = np.ones((3, 3), np.uint8)
        op = cv2.erode if rng.random() < 0.5 else cv2.dilate
        mask = op(mask, kernel, iterations=int(rng.integers(1, max(2, int(scale * 0.15)))))
    sigma = rng.uniform(0.05, 0.25) * scale
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return mask / max(float(mask.max()), 1e-6)


def _source_transform(img: np.ndarray, rng: Rng) -> np.ndarray:
    """SBI's source-target generator: colour and frequency changes to one copy."""
    out = color_jitter(img, rng, strength=rng.uniform(0.2, 0.6))
    r = rng.random()
    if r < 0.3:
        out = rescale(out, rng, 0.4, 0.9)
    elif r < 0.5:
        out = sharpen(out, rng)
    elif r < 0.65:
        out = blur(out, rng, 1.2)
    # location: a small resize and shift of the source face
    h, w = img.shape[:2]
    m = np.float32(
        [
            [rng.uniform(0.95, 1.05), 0, rng.uniform(-0.03, 0.03) * w],
            [0, rng.uniform(0.95, 1.05), rng.uniform(-0.03, 0.03) * h],
        ]
    )
    return cv2.warpAffine(out, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def self_blend(img: np.ndarray, landmarks: np.ndarray, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """The blended image and where it was blended (H x W float32 in [0, 1], before the
    blend ratio: the region whose pixels came from the altered copy)."""
    source = _source_transform(img, rng)
    region = face_mask(landmarks, img.shape[:2], rng)
    mask = (region * rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))[..., None]
    return _u8(source.astype(np.float32) * mask + img.astype(np.float32) * (1 - mask)), region
