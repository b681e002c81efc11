"""Manifests and face crops for training, through the serving pipeline.

Each image goes through the same decode, detector and crop functions as a request
does; the crops are cached under .cache/ (outside git: the data never enters the
project)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecheck.faces import DOWNSCALE_METHOD, YuNetDetector
from facecheck.images import ImageError, decode_bytes
from facecheck.orientation import (
    ORIENTATION_CROP,
    TURNED_MIN_CONFIDENCE,
    UPRIGHT_CONFIDENCE,
    find_upright_faces,
)
from facecheck.preprocess import CropSpec, crop_face, crop_matrix, landmarks_in_crop
from facecheck.settings import PROJECT_ROOT

# the developer data: FACECHECK_DATA, else `shared/data` beside the checkout
DATA_ROOT = Path(os.environ.get("FACECHECK_DATA") or PROJECT_ROOT.parent / "shared" / "data")
# what `python -m training.sources` builds from fetched repositories (outside the project)
SOURCES_ROOT = Path(os.environ.get("FACECHECK_SOURCES") or PROJECT_ROOT.parent / "sources")
# where the `fetch` tool leaves repository snapshots
MIRROR_ROOT = Path(os.environ.get("FACECHECK_MIRROR") or PROJECT_ROOT.parent / ".mirror")
CACHE_DIR = PROJECT_ROOT / ".cache"
# leave-one-source-out fold of each source of the shared liveness set; the fetched sources
# carry theirs in their manifest. Fold 0: never held out (the pre-cut pyis_* crops, which
# /liveness refuses, so that no held-out score could come from them)
SHARED_LIVENESS_FOLDS = {"nuaa": 1}
# the family (one way fakes are made: leave-one-family-out, training.lofo) of a real fake
# whose manifest has no `family` column, by its kind
KIND_FAMILIES = {"faceswap": "dfdc", "gan": "stylegan"}


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    kind: str
    group: str
    source: str
    split: str
    fold: int = 0  # leave-one-source-out fold (0: none)
    family: str = ""  # the manifest's `family` column, where it has one (family_of)


def dataset_dir(name: str) -> Path:
    """DATA_ROOT/<name> ("liveness" or "deepfake"), which must hold a manifest.csv."""
    path = DATA_ROOT / name
    if not (path / "manifest.csv").exists():
        raise FileNotFoundError(
            f"no {name} data at {path} (no manifest.csv): set FACECHECK_DATA to the folder "
            "that holds liveness/ and deepfake/"
        )
    return path


def read_manifest(root: Path, folds: dict[str, int] | None = None) -> list[Sample]:
    """A manifest's samples; their fold is the manifest's `fold` column, else `folds[source]`;
    their family the `family` column where there is one."""
    folds = folds or {}
    with open(root / "manifest.csv", newline="") as f:
        return [
            Sample(
                root / r["path"],
                r["label"],
                r["kind"],
                r["group"],
                r["source"],
                r["split"],
                int(r.get("fold") or folds.get(r["source"], 0)),
                r.get("family") or "",
            )
            for r in csv.DictReader(f)
        ]


def liveness_samples(with_sources: bool = True) -> list[Sample]:
    """The shared liveness set, and the fetched sources' frames where they have been built."""
    samples = read_manifest(dataset_dir("liveness"), SHARED_LIVENESS_FOLDS)
    if with_sources and (SOURCES_ROOT / "liveness" / "manifest.csv").exists():
        samples += read_manifest(SOURCES_ROOT / "liveness")
    return samples


def deepfake_samples(with_sources: bool = True) -> list[Sample]:
    """The shared deepfake set, and the fetched sources' images where they have been built."""
    return read_manifest(dataset_dir("deepfake")) + (fetched_deepfake_samples() if with_sources else [])


def fetched_deepfake_samples() -> list[Sample]:
    """The fetched deepfake sources' images (`python -m training.sources deepfake`), if built."""
    if not (SOURCES_ROOT / "deepfake" / "manifest.csv").exists():
        return []
    return read_manifest(SOURCES_ROOT / "deepfake")


def family_of(sample: Sample) -> str:
    """How a fake was made: its manifest's `family`, else KIND_FAMILIES[kind], else its source
    (a fetched source without the column is a family of its own); "" for a real face."""
    if sample.label == "real":
        return ""
    return sample.family or KIND_FAMILIES.get(sample.kind) or sample.source


def manifest_or_folder(path: Path) -> list[Sample]:
    """A manifest.csv folder, or a folder of <label>/<kind?>/*.jpg|png for evaluation."""
    if (path / "manifest.csv").exists():
        return read_manifest(path)
    samples = []
    for file in sorted(path.rglob("*")):
        if file.suffix.lower() in (".jpg", ".jpeg", ".png"):
            parts = file.relative_to(path).parts
            label = parts[0]
            kind = parts[1] if len(parts) > 2 else label
            # the layout says nothing of people or videos: each file is its own group
            samples.append(Sample(file, label, kind, str(file.relative_to(path)), path.name, "test"))
    return samples


@dataclass
class FaceCrops:
    """Crops of the samples whose face was found, per CropSpec."""

    samples: list[Sample]
    crops: dict[CropSpec, np.ndarray]  # N x S x S x 3 uint8
    landmarks: dict[CropSpec, np.ndarray]  # N x 5 x 2 float32, crop coordinates
    missed: list[Sample]


def _crop_one(args: tuple[Path, tuple[CropSpec, ...]]):
    path, specs = args
    try:
        image = decode_bytes(path.read_bytes()).pixels
    except ImageError:
        return None
    image, faces = find_upright_faces(image, _detector())
    if not faces:
        return None
    face = faces[0]  # training takes the largest face; serving's policy is stricter
    return [(crop_face(image, face, s), landmarks_in_crop(face, s)) for s in specs]


_DETECTOR: YuNetDetector | None = None


def _detector() -> YuNetDetector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = YuNetDetector()
    return _DETECTOR


def _cache_key(samples: list[Sample], specs: tuple[CropSpec, ...]) -> str:
    yunet = _detector()  # the crops follow the serving detector's settings
    orientation = (ORIENTATION_CROP.scale, ORIENTATION_CROP.size, UPRIGHT_CONFIDENCE, TURNED_MIN_CONFIDENCE)
    detector = (yunet.long_side, yunet.fallback_long_side, yunet.confidence, orientation, DOWNSCALE_METHOD)
    return hashlib.sha256(
        json.dumps(
            [
                [str(s.path) for s in samples],
                [(c.scale, c.size, *map(dataclasses.astuple, c.extras)) for c in specs],
                detector,
            ]
        ).encode()
    ).hexdigest()[:16]


def face_crops(samples: list[Sample], specs: tuple[CropSpec, ...], workers: int = 2) -> FaceCrops:
    cache = CACHE_DIR / f"crops-{_cache_key(samples, specs)}.npz"
    if cache.exists():
        data = np.load(cache)
        found = data["found"]
        kept = [s for s, f in zip(samples, found, strict=True) if f]
        missed = [s for s, f in zip(samples, found, strict=True) if not f]
        return FaceCrops(
            kept,
            {c: data[f"crops{i}"] for i, c in enumerate(specs)},
            {c: data[f"marks{i}"] for i, c in enumerate(specs)},
            missed,
        )
    # spawn, not fork: a parent that has started torch's OpenMP pool makes forked
    # children crawl
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_crop_one, [(s.path, specs) for s in samples], chunksize=32)
    found = np.array([r is not None for r in results])
    ok = [r for r in results if r is not None]
    arrays = {}
    for i, spec in enumerate(specs):
        empty_crops = np.zeros((0, spec.canvas, spec.canvas, 3), np.uint8)
        arrays[f"crops{i}"] = np.stack([r[i][0] for r in ok]) if ok else empty_crops
        arrays[f"marks{i}"] = np.stack([r[i][1] for r in ok]) if ok else np.zeros((0, 5, 2), np.float32)
    CACHE_DIR.mkdir(exist_ok=True)
    np.savez(cache, found=found, **arrays)
    return face_crops(samples, specs, workers)


# ---- where a face swap differs from its source video's real frame ---------------------------

MASK_SIZE = 56  # masks are kept at a quarter of a 224 px crop: the models see them coarser still
SWAP_DIFF_GREY = (8.0, 20.0)  # max-channel difference ramps from 0 to 1 over these grey levels
SWAP_MAX_COVERAGE = 0.5  # a pair differing over more of the frame is two different frames


def _swap_mask_one(args: tuple[Path, Path | None, CropSpec]) -> tuple[np.ndarray, bool]:
    fake_path, real_path, spec = args
    unusable = np.zeros((MASK_SIZE, MASK_SIZE), np.uint8), False
    if real_path is None:
        return unusable
    try:
        fake = decode_bytes(fake_path.read_bytes()).pixels
        real = decode_bytes(real_path.read_bytes()).pixels
    except ImageError:
        return unusable
    if fake.shape != real.shape:
        return unusable
    soft = [cv2.GaussianBlur(a.astype(np.float32), (0, 0), 1.5) for a in (fake, real)]
    lo, hi = SWAP_DIFF_GREY
    mask = np.clip((np.abs(soft[0] - soft[1]).max(axis=2) - lo) / (hi - lo), 0, 1)
    mask = cv2.GaussianBlur(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)), (0, 0), 4)
    if (mask > 0.5).mean() > SWAP_MAX_COVERAGE:
        return unusable
    image, faces = find_upright_faces(fake, _detector())
    if not faces or image is not fake:  # no face, or turned: the training crop is not from this frame
        return unusable
    in_crop = cv2.warpAffine(mask, crop_matrix(faces[0], spec), (spec.size, spec.size))
    small = cv2.resize(in_crop, (MASK_SIZE, MASK_SIZE), interpolation=cv2.INTER_AREA)
    return np.round(small * 255).astype(np.uint8), True


def swap_masks(fc: FaceCrops, spec: CropSpec, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """For each face swap in `fc` (in order), where it differs from the real crop of its
    source video, in `spec` crop coordinates (MASK_SIZE px, uint8 0-255), and whether that
    is known: the real frame exists and lines up with the swap (about 3 pairs in 4)."""
    real_of = {s.group: s.path for s in fc.samples if s.kind == "real"}
    swaps = [s for s in fc.samples if s.kind == "faceswap"]
    cache = CACHE_DIR / f"swap-masks-{_cache_key(swaps, (spec,))}.npz"
    if cache.exists():
        data = np.load(cache)
        return data["masks"], data["usable"]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(
            _swap_mask_one, [(s.path, real_of.get(s.group), spec) for s in swaps], chunksize=32
        )
    masks = np.stack([m for m, _ in results]) if results else np.zeros((0, MASK_SIZE, MASK_SIZE), np.uint8)
    usable = np.array([ok for _, ok in results], bool)
    CACHE_DIR.mkdir(exist_ok=True)
    np.savez(cache, masks=masks, usable=usable)
    return masks, usable
