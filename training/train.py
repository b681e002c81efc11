"""Train one facecheck model, export it to ONNX, calibrate it on val, write its card.

    python -m training.train liveness
    python -m training.train deepfake
    python -m training.train liveness --steps=20 --limit=64 --out=/tmp/x   (smoke run)
    python -m training.train deepfake --resume=1   (continue an interrupted run from its checkpoint)

Configuration is the plain values below; any of them can be overridden as --name=value.
Seeds are fixed: the same command gives the same model on the same machine."""

from __future__ import annotations

import functools
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torch.optim import swa_utils

from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE, FaceModel
from facecheck.preprocess import CropSpec
from facecheck.settings import PROJECT_ROOT, Settings
from training import augment, families
from training.data import (
    MASK_SIZE,
    MIRROR_ROOT,
    FaceCrops,
    Sample,
    dataset_dir,
    deepfake_samples,
    face_crops,
    family_of,
    fetched_deepfake_samples,
    liveness_samples,
    read_manifest,
    swap_masks,
)
from training.evaluate import bona_fide_threshold, calibrate, roc_auc, score_locally
from training.export import add_mirror_averaging, export_onnx, load_onnx_weights, set_metadata
from training.minifasnet import (
    LOGIT_CLIP,
    MINIFASNET_CROP,
    MINIFASNET_FILE,
    export_pair,
    fuse,
    interpolate,
    load_pair,
    tune,
)
from training.minifasnet import find_snapshot as find_minifasnet_snapshot
from training.minifasnet import snapshot_files as minifasnet_snapshot
from training.model import LITE_INPUT_SIZE, FaceClassifier, deepfake_model, liveness_model

# ---- configuration --------------------------------------------------------------------
task = "liveness"  # first positional argument: liveness | deepfake
seed = 1234
steps = 3000
batch_size = 32
lr = 1e-3
weight_decay = 1e-4
frozen_blocks = 4  # early backbone blocks kept at their ImageNet weights (speed on 2 cores)
# the EfficientNet-Lite variant (lite0 | lite2); the deepfake crop is its input size
# (LITE_INPUT_SIZE). The liveness model is Lite0's first blocks; the deepfake one Lite2
# (TASK_DEFAULTS)
backbone = "lite0"
eval_every = 250
limit = 0  # >0: use only this many images per split (smoke tests)
out = str(PROJECT_ROOT / "models")
threads = 2
# a checkpoint is written every eval_every steps; --resume=1 continues an interrupted run
# from it (same command, same settings) exactly where it stopped
checkpoint_dir = str(PROJECT_ROOT / ".cache" / "checkpoints")
resume = False
stop_after = 0  # >0: stop after this step, checkpoint kept, to split a long run into sittings
# the exported file averages each crop's score with its mirror image's: twice the model's
# cost, which neither shipped file pays (liveness's two views cost two passes already; the
# deepfake Lite2 would break its 30 ms per face; models/deepfake.md)
mirror = False
# this many DFDC face swaps per batch come with the real crop of their source video, both
# under the same capture augmentation: the pair differs only by the swap (deepfake)
pairs = 0
# a second stage from the first stage's weights: new seed (seed + 1), new one-cycle schedule
finetune_steps = 0
finetune_lr = 3e-4
finetune_pairs = 0
# liveness: share of samples of every class (and of MiniFASNet's tuning draws) turned 15-60
# degrees about the face (augment.tilt): tilted phone selfies whose landmarks read level. Tried
# at 0.3 on fold 6: both parts ranked the tilted selfies' source worse (models/liveness.md)
tilts = 0.0
# liveness: share of samples of every class (and of MiniFASNet's tuning draws) made dim and
# grainy as a phone brightens a dark room (augment.low_light). Tried at 0.3 on fold 6: the
# dim selfies' source ranked no better (models/liveness.md)
low_lights = 0.0
# liveness: share of samples of every class cut to a close-up (augment.close_up); 0.2 was
# tried and not shipped (models/liveness.md)
close_ups = 0.0
# liveness: share of samples that one of the model's two views is blanked for (TwoViewClassifier)
view_dropout = 0.0
# liveness (TASK_DEFAULTS): share of samples of every class cut closer around the face
# (augment.reframe), down to the least context /liveness judges (Settings.liveness_min_context)
reframes = 0.0
# liveness (TASK_DEFAULTS: 0): share of all draws that are attacks synthesised from a bona fide
# crop (print or replay: augment.synthetic_attack); the rest of the attack half are real attack
# crops. They taught our model to reject washed-out webcams (models/liveness.md)
synthetic_attacks = 0.3
# liveness (TASK_DEFAULTS): share of samples of every class given a strong colour cast
# (augment.colour_cast), so that a red room's light carries no label
colour_casts = 0.0
# liveness: each source's live and attack frames are drawn so that both classes have the same
# spread of colour saturation (SATURATION_BINS of the crops' mean HSV saturation): in the
# training sources saturated frames are mostly attacks, which taught our model to reject red
# rooms. Tried on fold 6: no better on the red rooms' source (models/liveness.md)
saturation_balance = False
# liveness: our model sees luminance only (inside its graph, so serving needs no change): red
# rooms' live frames scored low because saturated colour marks attacks in the training sources
# (models/liveness.md); MiniFASNet keeps the colour
grey_input = False
# liveness (TASK_DEFAULTS): share of attack samples cut out and put over a bona fide crop
# (augment.cut_out)
cut_outs = 0.0
# deepfake: >0 adds a training-only head that maps where a crop was manipulated (self-blend
# masks, face swaps' difference from their source frame, nothing in real faces), on the
# output of block mask_tap (14 x 14 cells), with this weight on its loss
mask_weight = 0.0
mask_tap = 10
# liveness: share of bona fide draws taken from the deepfake set's real faces (DFDC crops, FFHQ
# portraits) instead of the liveness frames
extra_bona_fide = 0.5
# liveness: also train on the whole-frame sources that `python -m training.sources liveness`
# built (training.data.SOURCES_ROOT); 0 is the shared set alone, the recipe before them
sources = True
# >0 leaves this leave-one-source-out fold's sources out of training (a fold model for
# `python -m training.loso`; training.sources and training.data give the folds); deepfake:
# out of the webcam_reals, which it needs
hold_out_fold = 0
# deepfake: the fetched sources' whole webcam frames (`python -m training.sources liveness`,
# `train` split: live, replayed and printed, none AI-made) join the other_camera real faces,
# so that a cheap webcam's softness is not taken for a fake (models/deepfake.md)
webcam_reals = False
# liveness: a leave-one-source-out report (training.loso) whose threshold the model takes: set
# on bona fide frames of every camera, each scored by a fold model that never saw it, instead
# of on the val split's one camera
loso_report = ""
# deepfake: families (training.families; comma-separated) whose fakes this model never sees:
# their real fakes leave the pools and a synthetic family's DEEPFAKE_MIX share goes to the
# others (training_mix); real faces stay. A leave-one-family-out model (training.lofo)
hold_out_family = ""
# deepfake: the synthetic families drawn (training.families; comma-separated) and their share
# of the draws, split evenly; the other DEEPFAKE_MIX shares make up the rest in proportion
# (the defaults are DEEPFAKE_MIX as it is)
synthetic_families = "self_blend"
synthetic_share = 0.2
# deepfake: >0 draws the fetched sources' images (`python -m training.sources deepfake`: real
# fakes of other tools and generators, and real faces) with this share of the draws, half fakes
# (each family alike) and half real faces; the other shares make up the rest in proportion. A
# held-out family's repositories stay out whole, real faces too (fetched_training_sources), so
# that it is judged on sources the model never saw; 0 draws none (they only test)
fetched_share = 0.0
# deepfake: >0 is training.lofo's head-only proxy: from --init, draw this many examples (this
# run's mix, capture augmentation), run the frozen network over them once and fit only its last
# linear layer (L2-regularised logistic regression, HEAD_L2); no steps are taken
head_only = 0
# >0: the model trained is an exponential moving average of the weights (and batch-norm
# statistics) over the steps, with this decay per step, rather than the last step's weights:
# flatter minima, which generalise better to unseen domains (SWAD, Cha et al. 2021). Tried at
# 0.995 for liveness: no change beyond noise (models/liveness.md)
ema_decay = 0.0
# an exported .onnx file of this task to start from instead of ImageNet (its batch norm
# statistics are folded away, so every batch norm stays as loaded: export.load_onnx_weights)
init = ""
# liveness: >0 ships the model inside one file with MiniFASNet (models/minifasnet.onnx, the
# public Silent-Face weights), their logits mixed with this weight on ours (training.minifasnet)
minifasnet_weight = 0.0
# liveness: train our model through that mix, MiniFASNet's logit on each training frame held
# fixed (0 where it never sees the sample: synthesised attacks, the deepfake set's pre-cut
# faces), so that ours learns what MiniFASNet gets wrong rather than what it already gets right;
# tried at 0.5 and not shipped (models/liveness.md)
fusion_training = False
# liveness: >0 fine-tunes MiniFASNet for this many steps on this run's training frames (its two
# nets, on their own crops) before it is fused, then sets its weights minifasnet_tune_alpha of
# the way from the published ones to the tuned (training.minifasnet.tune, interpolate). Needs the
# Silent-Face snapshot (`fetch`), like `python -m training.minifasnet`. Liveness (TASK_DEFAULTS):
# 300 steps, 0.3 of the way (0.5 and 0.4 let NUAA's prints through when NUAA was held out)
minifasnet_tune_steps = 0
minifasnet_tune_lr = 1e-4
minifasnet_tune_alpha = 0.5
# per-task values that replace the ones above (before command-line overrides)
TASK_DEFAULTS = {
    "liveness": {
        "steps": 800,
        "reframes": 0.3,
        "cut_outs": 0.4,
        "synthetic_attacks": 0.0,
        "colour_casts": 0.5,
        "minifasnet_weight": 0.3,
        "minifasnet_tune_steps": 300,
        "minifasnet_tune_alpha": 0.3,
    },
    "deepfake": {
        "backbone": "lite2",
        "steps": 3600,
        "frozen_blocks": 8,  # the stem up to the first block of Lite2's 88-channel stage
        "finetune_steps": 2400,
        "finetune_pairs": 8,
    },
}
LIVENESS_CROP = CropSpec(scale=2.0, size=224)  # the model sees it at 112 px twice (TwoViewClassifier)
LIVENESS_BOX_SIDE = round(LIVENESS_CROP.size / LIVENESS_CROP.scale)  # the face box inside it, px
DEEPFAKE_CROP_SCALE = 1.3
# threshold: 5 % of val bona fide rejected (the whole budget the product allows a live user:
# a retry costs less than an accepted print), pooled over whole camera frames (NUAA) and the
# deepfake set's val real faces that /liveness judges (not the pre-cut tight crops it
# refuses: calibrate_threshold, models/liveness.md)
LIVENESS_TARGET_BPCER = 0.05
LIVENESS_CALIBRATION_SOURCES = ("nuaa",)
SATURATION_BINS = 4  # saturation_balance: quantile bins of the pooled crops' mean saturation
MAX_DRAW_WEIGHT = 5.0  # saturation_balance: no frame drawn more than this many times as often
# what a deepfake training sample is: a real face, a real fake of each kind, or a
# self-blended image made from a real face (face swaps are the hard, common case)
# (a real fake's share is its kind's; a synthetic family's its name in training.families)
DEEPFAKE_MIX = {"real": 0.3, "other_camera": 0.2, "faceswap": 0.2, "gan": 0.1, "self_blend": 0.2}
FAKE_KINDS = ("faceswap", "gan")  # the kinds of real fakes drawn (each its DEEPFAKE_MIX share)
# "other_camera": unmanipulated faces of the liveness set's train split (webcam frames and
# crops, live or printed / replayed: none is AI-made), so that a camera's softness, noise or
# colour is not taken for a fake. These liveness sources stay out of it: the deepfake
# model's test on cameras it never saw (models/deepfake.md)
DEEPFAKE_HELD_OUT_CAMERAS = ("pyis_krzysiek", "pyis_lestari")
DEEPFAKE_TARGET_FPR = 0.03  # threshold: 3 % of val real faces flagged
HEAD_L2 = 1e-3  # head_only: weight of the squared weights beside the mean cross-entropy
# ----------------------------------------------------------------------------------------


def apply_overrides(argv: list[str]) -> None:
    positional = [a for a in argv if not a.startswith("--")]
    if positional:
        globals()["task"] = positional[0]
    globals().update(TASK_DEFAULTS.get(task, {}))
    for arg in argv:
        if not arg.startswith("--"):
            continue
        key, _, value = arg[2:].partition("=")
        if key not in globals() or key.isupper():
            raise SystemExit(f"unknown setting {key}")
        default = globals()[key]
        globals()[key] = type(default)(value) if not isinstance(default, bool) else value == "1"


def deepfake_crop() -> CropSpec:
    return CropSpec(scale=DEEPFAKE_CROP_SCALE, size=LITE_INPUT_SIZE[backbone])


def val_crop_args() -> tuple[str, CropSpec, str]:
    """The task's val_crops() arguments: dataset, crop, the label scored 1."""
    if task == "liveness":
        return "liveness", LIVENESS_CROP, "live"
    return "deepfake", deepfake_crop(), "fake"


def split_samples(
    dataset: str, split: str, rng: np.random.Generator, keep: Callable[[Sample], bool] = lambda s: True
) -> list[Sample]:
    """A dataset's `split` samples that `keep` accepts; at most `limit` of them (smoke runs).
    The liveness set includes the fetched sources when `sources` is on (deepfake: with
    `webcam_reals`)."""
    with_sources = sources and (task == "liveness" or webcam_reals)
    pool = liveness_samples(with_sources) if dataset == "liveness" else read_manifest(dataset_dir(dataset))
    samples = [s for s in pool if s.split == split and keep(s)]
    if limit <= 0 or len(samples) <= limit:
        return samples
    return [samples[i] for i in sorted(rng.choice(len(samples), limit, replace=False))]


class Example(NamedTuple):
    crop: np.ndarray
    label: float
    mask: np.ndarray | None = None  # where it was manipulated (MASK_SIZE px, 0-1); None: unknown
    offset: float = 0.0  # fusion_training: MiniFASNet's logit on the sample's frame


@dataclass
class Pool:
    crops: np.ndarray
    marks: np.ndarray | None = None
    offsets: np.ndarray | None = None  # fusion_training: MiniFASNet's logit per crop
    draw: np.ndarray | None = None  # saturation_balance: each crop's draw probability


def _pool(fc: FaceCrops, spec: CropSpec, keep, offsets: np.ndarray | None = None) -> Pool:
    idx = [i for i, s in enumerate(fc.samples) if keep(s)]
    return Pool(fc.crops[spec][idx], fc.landmarks[spec][idx], None if offsets is None else offsets[idx])


def minifasnet_logits(fc: FaceCrops) -> np.ndarray:
    """MiniFASNet's logit on each of `fc`'s frames, on its own crops of the same face."""
    theirs = face_crops(fc.samples, (MINIFASNET_CROP,))
    if [s.path for s in theirs.samples] != [s.path for s in fc.samples]:
        raise RuntimeError("the detector found other faces for MiniFASNet's crops")
    model = FaceModel(PROJECT_ROOT / "models" / MINIFASNET_FILE, threads, max_run=256)
    live = np.clip(model(theirs.crops[MINIFASNET_CROP]), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(live / (1 - live)).astype(np.float32)


# ---- liveness -----------------------------------------------------------------------------


def tune_minifasnet(out: Path, rng: np.random.Generator) -> None:
    """MiniFASNet tuned on this run's training frames (the held-out fold left out) and
    interpolated towards the published weights, written to `out`."""
    theirs = face_crops(split_samples("liveness", "train", rng), (MINIFASNET_CROP,))
    kept = [i for i, s in enumerate(theirs.samples) if not hold_out_fold or s.fold != hold_out_fold]
    samples = [theirs.samples[i] for i in kept]
    snapshot = minifasnet_snapshot(MIRROR_ROOT)
    published, tuned = load_pair(snapshot), load_pair(snapshot)
    tune(
        tuned,
        theirs.crops[MINIFASNET_CROP][kept],
        np.array([s.label == "live" for s in samples]),
        np.array([s.source for s in samples]),
        minifasnet_tune_steps,
        minifasnet_tune_lr,
        colour_casts,
        np.random.default_rng(seed),
        tilts=tilts,
        low_lights=low_lights,
    )
    how = f"{minifasnet_tune_steps} steps at lr {minifasnet_tune_lr:g} on {len(samples)} frames"
    export_pair(
        interpolate(published, tuned, minifasnet_tune_alpha), out, f"{how}, alpha {minifasnet_tune_alpha:g}"
    )


def mean_saturation(crops: np.ndarray) -> np.ndarray:
    """Each uint8 BGR crop's mean HSV saturation (0-255)."""
    return np.array([cv2.cvtColor(c, cv2.COLOR_BGR2HSV)[..., 1].mean() for c in crops], np.float32)


def saturation_balanced_weights(sources: np.ndarray, live: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """Draw weights under which each source's live and attack frames spread alike over the
    saturation bins (the mean of the two classes' spreads), each class of a source keeping
    its number of draws; a source with one class keeps weight 1."""
    edges = np.quantile(saturation, np.linspace(0, 1, SATURATION_BINS + 1)[1:-1])
    bins = np.digitize(saturation, edges)
    weights = np.ones(len(sources))
    for source in np.unique(sources):
        members = [(sources == source) & (live == is_live) for is_live in (True, False)]
        if not all(m.any() for m in members):
            continue
        spreads = [np.bincount(bins[m], minlength=SATURATION_BINS) / m.sum() for m in members]
        target = (spreads[0] + spreads[1]) / 2
        for m, spread in zip(members, spreads, strict=True):
            w = np.minimum(target[bins[m]] / spread[bins[m]], MAX_DRAW_WEIGHT)
            weights[m] = w * m.sum() / w.sum()
    return weights


class LivenessBatches:
    """Half bona fide (liveness live frames and deepfake-set real faces, equally), half
    attacks (real print/replay crops, and print/replay synthesised from bona fide)."""

    def __init__(self, rng: np.random.Generator):
        specs = (LIVENESS_CROP,)
        # every fold's crops in one cache, whichever fold this run holds out
        live_set = face_crops(split_samples("liveness", "train", rng), specs)
        extra = face_crops(split_samples("deepfake", "train", rng, lambda s: s.label == "real"), specs)
        trained = {s.source for s in live_set.samples if not hold_out_fold or s.fold != hold_out_fold}
        offsets = minifasnet_logits(live_set) if fusion_training else np.zeros(len(live_set.samples))
        self.live = _pool(
            live_set, LIVENESS_CROP, lambda s: s.source in trained and s.label == "live", offsets
        )
        self.extra = _pool(extra, LIVENESS_CROP, lambda s: True, np.zeros(len(extra.samples)))
        self.attacks = _pool(
            live_set, LIVENESS_CROP, lambda s: s.source in trained and s.label == "attack", offsets
        )
        print(f"liveness train: {len(self.live.crops)} live and {len(self.attacks.crops)} attack faces")
        if saturation_balance:
            kept = [s.source in trained for s in live_set.samples]
            samples = [s for s, k in zip(live_set.samples, kept, strict=True) if k]
            weights = saturation_balanced_weights(
                np.array([s.source for s in samples]),
                np.array([s.label == "live" for s in samples]),
                mean_saturation(live_set.crops[LIVENESS_CROP][np.array(kept)]),
            )
            for pool, label in ((self.live, "live"), (self.attacks, "attack")):
                w = weights[[s.label == label for s in samples]]
                pool.draw = w / w.sum()
        self.min_context = Settings().liveness_min_context  # the default the service ships with
        self.rng = rng

    def _index(self, pool: Pool) -> int:
        if pool.draw is None:
            return int(self.rng.integers(len(pool.crops)))
        return int(self.rng.choice(len(pool.draw), p=pool.draw))

    def _bona_fide(self) -> tuple[np.ndarray, float]:
        """A bona fide crop and MiniFASNet's logit on its frame."""
        pool = self.extra if self.rng.random() >= 1 - extra_bona_fide else self.live
        i = self._index(pool)
        assert pool.offsets is not None
        return pool.crops[i], float(pool.offsets[i])

    def sample(self) -> Example:
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            (crop, offset), label = self._bona_fide(), 1.0
        elif r < 1 - synthetic_attacks and len(self.attacks.crops):
            i = self._index(self.attacks)
            assert self.attacks.offsets is not None
            crop, label, offset = self.attacks.crops[i], 0.0, float(self.attacks.offsets[i])
        else:  # MiniFASNet never sees a synthesised attack: no offset
            kind = "print" if rng.random() < 0.5 else "replay"
            crop, label, offset = augment.synthetic_attack(self._bona_fide()[0], rng, kind), 0.0, 0.0
        # each knob draws only when it is on, so that runs without it keep their random stream
        if cut_outs and label == 0.0 and rng.random() < cut_outs:
            crop, offset = augment.cut_out(crop, self._bona_fide()[0], rng, LIVENESS_BOX_SIDE), 0.0
        if rng.random() < close_ups:
            crop = augment.close_up(crop, rng)
        if reframes and rng.random() < reframes:
            crop = augment.reframe(crop, rng, LIVENESS_BOX_SIDE, self.min_context)
        if colour_casts and rng.random() < colour_casts:
            crop = augment.colour_cast(crop, rng)
        if tilts and rng.random() < tilts:
            crop = augment.tilt(crop, rng)
        if low_lights and rng.random() < low_lights:
            crop = augment.low_light(crop, rng)
        return Example(augment.capture(crop, rng), label, offset=offset)


# ---- deepfake -----------------------------------------------------------------------------


def held_out_families() -> set[str]:
    return set(families.names(hold_out_family))


def is_held_out(sample: Sample) -> bool:
    """A fake of a family this run holds out (--hold_out_family)."""
    return family_of(sample) in held_out_families()


def run_mix() -> dict[str, float]:
    """DEEPFAKE_MIX with --synthetic_families sharing --synthetic_share evenly, and the fetched
    sources' fakes and real faces sharing --fetched_share."""
    drawn = families.names(synthetic_families)
    if drawn == ["self_blend"] and synthetic_share == DEEPFAKE_MIX["self_blend"]:
        mix = dict(DEEPFAKE_MIX)  # the same floats, so the same draws as ever
    else:
        synthetic = families.SYNTHETIC_FAMILIES
        rest = {what: share for what, share in DEEPFAKE_MIX.items() if what not in synthetic}
        scale = (1 - synthetic_share) / sum(rest.values())
        mix = {what: share * scale for what, share in rest.items()} | {
            name: synthetic_share / len(drawn) for name in drawn
        }
    if not fetched_share:
        return mix
    return {what: share * (1 - fetched_share) for what, share in mix.items()} | {
        "fetched_fake": fetched_share / 2,
        "fetched_real": fetched_share / 2,
    }


def drawable_fetched_samples() -> list[Sample]:
    """The fetched deepfake sources' images that training may draw: all but those of sources
    that only test (split "test": training.sources)."""
    return [s for s in fetched_deepfake_samples() if s.split != "test"]


def fetched_training_sources() -> list[str]:
    """The fetched sources (training.data.SOURCES_ROOT/deepfake) that a run with --fetched_share
    draws: the drawable ones (drawable_fetched_samples) but those holding a fake of a held-out
    family, whose real faces stay out too."""
    if not fetched_share:
        return []
    fetched = drawable_fetched_samples()
    held = {s.source for s in fetched if is_held_out(s)}
    return sorted({s.source for s in fetched} - held)


def training_mix(empty: set[str]) -> dict[str, float]:
    """DEEPFAKE_MIX for this run: with --hold_out_family, a held-out synthetic family's share
    and that of each entry with nothing left to draw (`empty`: a kind whose fakes are all held
    out) go to the others in proportion; without it, DEEPFAKE_MIX as it is (a kind missing from
    a --limit subset is self-blended instead)."""
    held = held_out_families()
    if not held:
        return run_mix()
    mix = {what: 0.0 if what in held | empty else share for what, share in run_mix().items()}
    total = sum(mix.values())
    return {what: share / total for what, share in mix.items()}


def trained_families() -> set[str]:
    """The families whose fakes a deepfake run that holds none out draws: those of its train
    split's real fakes of FAKE_KINDS, the synthetic families with a DEEPFAKE_MIX share, and
    with --fetched_share the families of the fetched sources it may draw."""
    pool = split_samples("deepfake", "train", np.random.default_rng(seed))
    synthetic = {name for name in families.SYNTHETIC_FAMILIES if run_mix().get(name)}
    fetched = families.real_families(drawable_fetched_samples()) if fetched_share else set()
    return families.real_families([s for s in pool if s.kind in FAKE_KINDS]) | synthetic | fetched


class DeepfakeBatches:
    """Real faces (DFDC, FFHQ and other cameras'), real fakes per kind and self-blended images,
    in DEEPFAKE_MIX shares."""

    def __init__(self, rng: np.random.Generator):
        spec = deepfake_crop()
        # every family's crops in one cache, whichever families this run holds out
        fc = face_crops(split_samples("deepfake", "train", rng), (spec,))
        self.real = _pool(fc, spec, lambda s: s.label == "real")

        def kept(s: Sample, kind: str) -> bool:
            return s.kind == kind and not is_held_out(s)

        self.fakes = {kind: _pool(fc, spec, lambda s, k=kind: kept(s, k)) for kind in FAKE_KINDS}
        self.fakes = {k: p for k, p in self.fakes.items() if len(p.crops)}
        others = face_crops(split_samples("liveness", "train", rng, is_other_camera), (spec,))
        self.other_camera = _pool(others, spec, lambda s: True)
        self.fetched_real, self.fetched_fakes = self._fetched_pools(spec)
        empty = {k for k in FAKE_KINDS if k not in self.fakes}
        empty |= set() if self.fetched_fakes else {"fetched_fake"}
        empty |= set() if self.fetched_real and len(self.fetched_real.crops) else {"fetched_real"}
        self.mix = training_mix(empty)
        if held_out_families():
            shares = ", ".join(f"{k} {v:.3f}" for k, v in self.mix.items())
            print(f"holding out {hold_out_family}: {len(fc.samples)} train faces, mix {shares}", flush=True)
        # (position in self.real, position in the face-swap pool) of each source video's pair
        position = {"real": 0, "faceswap": 0}
        by_group: dict[str, dict[str, int]] = {}
        for s in fc.samples:
            if s.kind == "real" or kept(s, "faceswap"):
                by_group.setdefault(s.group, {})[s.kind] = position[s.kind]
                position[s.kind] += 1
        self.pairs = [(g["real"], g["faceswap"]) for g in by_group.values() if len(g) == 2]
        # per face swap: where it differs from its source frame, and whether that is known
        self.swap_masks: tuple[np.ndarray, np.ndarray] | None = None
        if mask_weight and "faceswap" in self.fakes:
            masks, usable = swap_masks(fc, spec)  # of every face swap: those of the pool
            in_pool = np.array([not is_held_out(s) for s in fc.samples if s.kind == "faceswap"], bool)
            self.swap_masks = masks[in_pool], usable[in_pool]
            usable = self.swap_masks[1]
            print(f"face swap masks: {usable.sum()} of {len(usable)} pairs line up", flush=True)
        self.rng = rng

    @staticmethod
    def _fetched_pools(spec: CropSpec) -> tuple[Pool | None, dict[str, Pool]]:
        """The real faces and each family's fakes of the fetched sources this run draws."""
        drawn = set(fetched_training_sources())
        if not drawn:
            return None, {}
        fc = face_crops([s for s in fetched_deepfake_samples() if s.source in drawn], (spec,))
        fakes = {
            family: _pool(fc, spec, lambda s, f=family: s.label != "real" and family_of(s) == f)
            for family in sorted(families.real_families(fc.samples))
        }
        real = _pool(fc, spec, lambda s: s.label == "real")
        counts = ", ".join(f"{f} {len(p.crops)}" for f, p in fakes.items())
        print(f"fetched {', '.join(sorted(drawn))}: {len(real.crops)} real faces, fakes {counts}", flush=True)
        return real, fakes

    def _swap_mask(self, i: int) -> np.ndarray | None:
        if self.swap_masks is None or not self.swap_masks[1][i]:
            return None
        return self.swap_masks[0][i].astype(np.float32) / 255

    def sample(self) -> Example:
        rng = self.rng
        what = list(self.mix)[rng.choice(len(self.mix), p=list(self.mix.values()))]
        mask: np.ndarray | None = None
        if what in self.fakes:
            pool = self.fakes[what]
            i = int(rng.integers(len(pool.crops)))
            crop, label = pool.crops[i], 1.0
            if what == "faceswap":
                mask = self._swap_mask(i)
        elif what == "fetched_fake":  # each family alike, whatever its size; where it was changed is unknown
            pool = list(self.fetched_fakes.values())[rng.integers(len(self.fetched_fakes))]
            crop, label = pool.crops[int(rng.integers(len(pool.crops)))], 1.0
        else:  # a genuine face, self-blended unless a real one was asked for
            other_real = {"other_camera": self.other_camera, "fetched_real": self.fetched_real}
            pool = other_real.get(what) or self.real
            pool = pool if len(pool.crops) else self.real  # none in a --limit subset
            i = int(rng.integers(len(pool.crops)))
            crop, label, mask = pool.crops[i], 0.0, np.zeros((MASK_SIZE, MASK_SIZE), np.float32)
            if what not in ("real", *other_real):  # a synthetic family, or a kind missing from a subset
                assert pool.marks is not None
                make = families.SYNTHETIC_FAMILIES[
                    what if what in families.SYNTHETIC_FAMILIES else "self_blend"
                ]
                crop, region = make(crop, pool.marks[i], rng, functools.partial(self._donor, pool))
                label, mask = 1.0, cv2.resize(region, (MASK_SIZE, MASK_SIZE), interpolation=cv2.INTER_AREA)
        crop, mask = augment.capture_with_mask(crop, mask, rng)
        return Example(crop, label, mask)

    def _donor(self, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
        """Another real face of `pool` for a synthetic family that takes one."""
        assert pool.marks is not None
        j = int(self.rng.integers(len(pool.crops)))
        return pool.crops[j], pool.marks[j]

    def sample_pair(self) -> list[Example]:
        """A source video's real crop and its face swap, augmented alike."""
        if not self.pairs:  # a small subset may hold no whole pair
            return [self.sample(), self.sample()]
        real, fake = self.pairs[self.rng.integers(len(self.pairs))]
        swaps = self.fakes["faceswap"].crops
        masks = [np.zeros((MASK_SIZE, MASK_SIZE), np.float32), self._swap_mask(fake)]
        (real_crop, real_mask), (fake_crop, fake_mask) = augment.capture_alike(
            [self.real.crops[real], swaps[fake]], self.rng, masks
        )
        return [Example(real_crop, 0.0, real_mask), Example(fake_crop, 1.0, fake_mask)]


def is_other_camera(sample: Sample) -> bool:
    """A liveness-set image the deepfake model trains on as a genuine face (see DEEPFAKE_MIX):
    not a held-out camera, nor one of the held-out fold's sources."""
    held = bool(hold_out_fold) and sample.fold == hold_out_fold
    return sample.source not in DEEPFAKE_HELD_OUT_CAMERAS and not held


def val_crops(
    dataset: str, spec: CropSpec, positive_label: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crops and 0/1 labels (1 = `positive_label`) of a dataset's val split, without the fakes
    of the families this run holds out."""
    fc = face_crops(split_samples(dataset, "val", rng), (spec,))
    idx = [i for i, s in enumerate(fc.samples) if not is_held_out(s)]
    return fc.crops[spec][idx], np.array([fc.samples[i].label == positive_label for i in idx], np.float32)


# ---- loop ---------------------------------------------------------------------------------


def predict(model: torch.nn.Module, crops: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [torch.sigmoid(model(torch.from_numpy(crops[i : i + 64]))) for i in range(0, len(crops), 64)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def mask_loss(logits: torch.Tensor, masks: list[np.ndarray | None]) -> torch.Tensor:
    """Per-cell binary cross-entropy against each known mask, shrunk to the logits' grid."""
    h, w = logits.shape[1:]
    known = [i for i, m in enumerate(masks) if m is not None]
    if not known:
        return logits.sum() * 0
    targets = np.stack([cv2.resize(masks[i], (w, h), interpolation=cv2.INTER_AREA) for i in known])
    return F.binary_cross_entropy_with_logits(logits[known], torch.from_numpy(targets))


def set_frozen(model: torch.nn.Module, n_blocks: int) -> list[torch.nn.Module]:
    frozen = [model.backbone._conv_stem, model.backbone._bn0, *model.backbone._blocks[:n_blocks]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad = False
    return frozen


def save_checkpoint(
    path: Path, next_step: int, history: list[dict], model, optimizer, schedule, rng, averaged=None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "next_step": next_step,
        "history": history,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "averaged": averaged.state_dict() if averaged is not None else None,
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)  # never leave a half-written checkpoint


def load_checkpoint(path: Path, model, optimizer, schedule, rng, averaged=None) -> tuple[int, list[dict]]:
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    if averaged is not None:
        averaged.load_state_dict(state["averaged"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return state["next_step"], state["history"]


def calibrate_threshold(onnx_path: Path, val_x: np.ndarray, val_y: np.ndarray) -> float:
    """Calibrate the task's threshold on val and write it into the file's metadata."""
    if loso_report:
        threshold = float(json.loads(Path(loso_report).read_text())["threshold"])
    elif task == "deepfake":  # fakes score high: DEEPFAKE_TARGET_FPR of the val real faces above it
        threshold = calibrate(onnx_path, val_x, val_y, DEEPFAKE_TARGET_FPR, bona_fide_high=False)
    else:
        # LIVENESS_TARGET_BPCER of the val bona fide faces that /liveness judges, scored as it
        # scores them (decode, detector, context gate, crop): whole frames, and the deepfake
        # set's real faces for more cameras than NUAA's one; faces it refuses don't count
        rng = np.random.default_rng(seed)
        frames = split_samples(
            "liveness", "val", rng, lambda s: s.label == "live" and s.source in LIVENESS_CALIBRATION_SOURCES
        )
        faces = split_samples("deepfake", "val", rng, lambda s: s.label == "real")
        scored = score_locally("liveness", [s.path for s in frames + faces], onnx_path.parent)[0]
        judged = np.array([score for score in scored if score is not None])
        if len(judged):
            threshold = bona_fide_threshold(judged, LIVENESS_TARGET_BPCER, bona_fide_high=True)
        else:  # a smoke run's subset may hold none of them: val crops as the file takes them
            val_x, val_y = val_crops("liveness", FaceModel(onnx_path).crop, "live", rng)
            threshold = calibrate(onnx_path, val_x, val_y, LIVENESS_TARGET_BPCER, bona_fide_high=True)
    set_metadata(onnx_path, {"threshold": f"{threshold:.6f}"})
    return threshold


@dataclass(frozen=True)
class Stage:
    name: str  # checkpoint file name
    seed: int
    first: int  # step numbers run on from one stage to the next
    last: int
    lr: float
    pairs: int


def plan() -> list[Stage]:
    if task != "deepfake" and (pairs or finetune_pairs):
        raise SystemExit("pairs are DFDC face swaps with their source video: deepfake only")
    if task != "liveness" and (view_dropout or loso_report):
        raise SystemExit("view_dropout and loso_report are liveness settings")
    if task != "deepfake" and webcam_reals:
        raise SystemExit("webcam_reals is a deepfake setting (the liveness task trains on them)")
    if task == "deepfake" and hold_out_fold and not webcam_reals:
        raise SystemExit("a deepfake run holds a fold of the webcam_reals out: give --webcam_reals=1")
    if task != "liveness" and grey_input:
        raise SystemExit("grey_input is a liveness setting")
    if task != "liveness" and saturation_balance:
        raise SystemExit("saturation_balance is a liveness setting")
    if ema_decay and head_only:
        raise SystemExit("ema_decay averages over steps, and head_only takes none")
    if task != "liveness" and minifasnet_weight:
        raise SystemExit("minifasnet_weight is a liveness setting")
    if not 0.0 <= minifasnet_weight < 1.0:
        raise SystemExit("minifasnet_weight is the weight on our model's logit: 0 (alone) to below 1")
    if fusion_training and not minifasnet_weight:
        raise SystemExit("fusion_training trains through the mix: give minifasnet_weight")
    if minifasnet_tune_steps and not minifasnet_weight:
        raise SystemExit(
            "minifasnet_tune_steps tunes the MiniFASNet that is fused: give minifasnet_weight, "
            "or --minifasnet_tune_steps=0"
        )
    if not 0.0 <= minifasnet_tune_alpha <= 1.0:
        raise SystemExit("minifasnet_tune_alpha is the share of the way to the tuned weights: 0 to 1")
    if task != "deepfake" and mask_weight:
        raise SystemExit("manipulation masks are deepfake only")
    if task != "deepfake" and hold_out_family:
        raise SystemExit("hold_out_family is a deepfake setting")
    if hold_out_family:  # names that match no family would silently hold out nothing
        families.parse(
            hold_out_family, families.real_families(deepfake_samples()) | set(families.SYNTHETIC_FAMILIES)
        )
    if task != "deepfake" and (head_only or synthetic_families != "self_blend" or fetched_share):
        raise SystemExit("head_only, synthetic_families and fetched_share are deepfake settings")
    if not 0.0 <= fetched_share < 1.0:
        raise SystemExit("fetched_share is a share of the draws: 0 (none) to below 1")
    if fetched_share and not fetched_deepfake_samples():
        raise SystemExit("fetched_share draws the fetched sources: python -m training.sources deepfake")
    families.parse(synthetic_families, set(families.SYNTHETIC_FAMILIES))
    if not 0.0 < synthetic_share < 1.0:
        raise SystemExit("synthetic_share is a share of the draws: above 0, below 1")
    if head_only and not init:
        raise SystemExit("head_only fits the last layer of an exported file: give --init")
    if task != "deepfake" and backbone != "lite0":
        raise SystemExit("the liveness model is built on Lite0's first blocks")
    if backbone not in LITE_INPUT_SIZE:
        raise SystemExit(f"unknown backbone {backbone}: one of {', '.join(LITE_INPUT_SIZE)}")
    # the settings are checked first: a wrong one is named even where the snapshot is missing
    if minifasnet_tune_steps and find_minifasnet_snapshot(MIRROR_ROOT) is None:
        raise SystemExit(
            f"minifasnet_tune_steps needs the Silent-Face snapshot under {MIRROR_ROOT} (fetched as "
            "models/minifasnet.md says), or --minifasnet_tune_steps=0"
        )
    name = f"{task}-{steps}-seed{seed}-limit{limit}" + f"-{backbone}" * (backbone != "lite0")
    name += f"-pairs{pairs}" * bool(pairs) + f"-closeups{close_ups}" * bool(close_ups)
    name += f"-reframes{reframes}" * bool(reframes) + f"-cutouts{cut_outs}" * bool(cut_outs)
    name += f"-viewdrop{view_dropout}" * bool(view_dropout) + "-sources" * (task == "liveness" and sources)
    name += f"-holdout{hold_out_fold}" * bool(hold_out_fold) + "-webcams" * webcam_reals
    name += f"-without-{'+'.join(sorted(held_out_families()))}" * bool(hold_out_family)
    name += f"-extra{extra_bona_fide}" * (extra_bona_fide != 0.5)
    name += f"-fusedtraining{minifasnet_weight}" * fusion_training
    name += f"-synthetic{synthetic_attacks}" * (synthetic_attacks != 0.3)
    name += f"-casts{colour_casts}" * bool(colour_casts) + "-grey" * grey_input
    name += f"-tilts{tilts}" * bool(tilts) + f"-lowlights{low_lights}" * bool(low_lights)
    name += f"-ema{ema_decay}" * bool(ema_decay) + "-satbalance" * saturation_balance
    name += f"-mask{mask_weight}" * bool(mask_weight) + f"-init-{Path(init).stem}" * bool(init)
    name += f"-fetched{fetched_share}" * bool(fetched_share)
    stages = [Stage(name, seed, 1, steps, lr, pairs)]
    if finetune_steps:
        name += f"-finetune{finetune_steps}-pairs{finetune_pairs}"
        stages.append(Stage(name, seed + 1, steps + 1, steps + finetune_steps, finetune_lr, finetune_pairs))
    return stages


def fit_head(model: FaceClassifier, batches: DeepfakeBatches, n: int) -> FaceClassifier:
    """`model` from --init with its last linear layer refitted on `n` drawn examples, the
    rest of the network frozen (the head-only proxy of training.lofo)."""
    model.load_imagenet()
    load_onnx_weights(model, Path(init))
    model.eval()
    examples = [batches.sample() for _ in range(n)]
    labels = torch.tensor([e.label for e in examples])
    pooled = model.head[:-2]  # up to the pooled, flattened features (dropout is off in eval)
    with torch.no_grad():
        features = torch.cat(
            [
                pooled(
                    model.backbone(
                        model.input(torch.from_numpy(np.stack([e.crop for e in examples[i : i + 64]])))
                    )
                )
                for i in range(0, n, 64)
            ]
        )
    linear = model.head[-1]
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = F.binary_cross_entropy_with_logits(linear(features).squeeze(1), labels)
        value = value + HEAD_L2 * linear.weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return model


def run_stage(
    stage: Stage,
    build_model,
    batches,
    val_x: np.ndarray,
    val_y: np.ndarray,
    weights: dict | None,
    history: list[dict],
    started: float,
) -> tuple[torch.nn.Module, list[dict]] | None:
    """One stage's model after its last step, or None when --stop_after stopped it."""
    torch.manual_seed(stage.seed)
    model = build_model()
    model.load_imagenet()
    frozen = set_frozen(model, frozen_blocks)
    if weights is not None:
        model.load_state_dict(weights)
    elif init:
        load_onnx_weights(model, Path(init))
    if init:  # the loaded batch norms are identities plus a bias: keep them as they are
        frozen += [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    averaged = None
    if ema_decay:
        averaged = swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(ema_decay), use_buffers=True
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=weight_decay)
    total = stage.last - stage.first + 1
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, stage.lr, total_steps=total, pct_start=0.1)
    checkpoint = Path(checkpoint_dir) / f"{stage.name}.pt"
    first_step = stage.first
    if resume and checkpoint.exists():
        first_step, history = load_checkpoint(checkpoint, model, optimizer, schedule, batches.rng, averaged)
        print(f"resumed from {checkpoint} at step {first_step}", flush=True)
    for step in range(first_step, stage.last + 1):
        model.train()
        for module in frozen:
            module.eval()  # keep ImageNet batch-norm statistics in the frozen blocks
        samples = [s for _ in range(stage.pairs) for s in batches.sample_pair()]
        samples += [batches.sample() for _ in range(batch_size - len(samples))]
        x = torch.from_numpy(np.stack([s.crop for s in samples]))
        y = torch.tensor([s.label for s in samples])
        if mask_weight:
            logits, mask_logits = model.forward_with_mask(x)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            loss = loss + mask_weight * mask_loss(mask_logits, [s.mask for s in samples])
        elif fusion_training:  # the loss of the shipped mix, MiniFASNet's part held fixed
            offsets = torch.tensor([s.offset for s in samples])
            mixed = minifasnet_weight * model(x) + (1 - minifasnet_weight) * offsets
            loss = F.binary_cross_entropy_with_logits(mixed, y)
        else:
            loss = F.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if averaged is not None:
            averaged.update_parameters(model)
        if step % 50 == 0:
            print(f"step {step}/{stage.last} loss {loss.item():.4f} {time.time() - started:.0f}s", flush=True)
        if step % eval_every == 0 or step == stage.last:
            auc = roc_auc(predict(model if averaged is None else averaged.module, val_x), val_y)
            history.append({"step": step, "val_auc": auc})
            print(f"step {step} val AUC {auc:.4f}", flush=True)
        if step % eval_every == 0 or step in (stage.last, stop_after):
            save_checkpoint(checkpoint, step + 1, history, model, optimizer, schedule, batches.rng, averaged)
        if step == stop_after:
            print(f"stopped after step {step}; continue with --resume=1", flush=True)
            return None
    return (model if averaged is None else averaged.module), history


def main() -> None:
    apply_overrides(sys.argv[1:])
    stages = plan()  # checks the settings before any data is read
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    started = time.time()
    if task == "liveness":
        batches, filename = LivenessBatches(rng), LIVENESS_FILE
        build_model = functools.partial(liveness_model, view_dropout, grey_input)
    elif task == "deepfake":
        batches, filename = DeepfakeBatches(rng), DEEPFAKE_FILE
        build_model = functools.partial(deepfake_model, mask_tap if mask_weight else -1, backbone)
    else:
        raise SystemExit(f"unknown task {task}")
    dataset, crop, positive_label = val_crop_args()
    val_x, val_y = val_crops(dataset, crop, positive_label, rng)
    print(f"data ready in {time.time() - started:.0f}s; val {len(val_y)} crops", flush=True)
    weights, history = None, []
    if head_only:
        model = fit_head(build_model(), batches, head_only)
        history = [{"step": 0, "val_auc": roc_auc(predict(model, val_x), val_y)}]
        print(f"head fitted on {head_only} examples; val AUC {history[0]['val_auc']:.4f}", flush=True)
        stages = []
    for stage in stages:
        if stage.seed != seed:
            batches.rng = np.random.default_rng(stage.seed)
        result = run_stage(stage, build_model, batches, val_x, val_y, weights, history, started)
        if result is None:
            return
        model, history = result
        weights = model.state_dict()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / filename
    parity = export_onnx(model, crop, onnx_path, task, check_crops=val_x[:64])
    if mirror:
        add_mirror_averaging(onnx_path)
    if minifasnet_weight:
        if hold_out_fold:  # a fold's model of ours alone, to try other weights on (training.loso)
            (out_dir / "unfused").mkdir(exist_ok=True)
            shutil.copy(onnx_path, out_dir / "unfused" / filename)
        component = PROJECT_ROOT / "models" / MINIFASNET_FILE
        if minifasnet_tune_steps:
            # a fold's tuned MiniFASNet alone is kept beside its model of ours, like "unfused"
            component = out_dir / "minifasnet" / filename
            component.parent.mkdir(exist_ok=True)
            tune_minifasnet(component, rng)
        fuse(onnx_path, component, onnx_path, minifasnet_weight)
        if minifasnet_tune_steps and not hold_out_fold:
            shutil.rmtree(component.parent)
    threshold = calibrate_threshold(onnx_path, val_x, val_y)
    summary = {
        "task": task,
        "steps": stages[-1].last if stages else 0,
        "stages": [
            {"steps": st.last - st.first + 1, "lr": st.lr, "pairs": st.pairs, "seed": st.seed}
            for st in stages
        ],
        "onnx_parity_max_abs": parity,
        "batch_size": batch_size,
        "seed": seed,
        "threshold": threshold,
        "mirror_averaged": mirror,
        "mask_weight": mask_weight,
        "close_ups": close_ups,
        "reframes": reframes,
        "cut_outs": cut_outs,
        "view_dropout": view_dropout,
        "init": init,
        "sources": sources and task == "liveness",
        "webcam_reals": webcam_reals,
        "hold_out_fold": hold_out_fold,
        "hold_out_family": sorted(held_out_families()),
        "synthetic_families": synthetic_families,
        "synthetic_share": synthetic_share,
        "fetched_share": fetched_share,
        # their real faces score low by training: training.evaluate --lofo judges none of them
        "fetched_sources_trained": fetched_training_sources(),
        "head_only": head_only,
        "extra_bona_fide": extra_bona_fide,
        "loso_report": loso_report,
        "minifasnet_weight": minifasnet_weight,
        "fusion_training": fusion_training,
        "minifasnet_tune_steps": minifasnet_tune_steps,
        "minifasnet_tune_alpha": minifasnet_tune_alpha,
        "ema_decay": ema_decay,
        "synthetic_attacks": synthetic_attacks,
        "colour_casts": colour_casts,
        "tilts": tilts,
        "low_lights": low_lights,
        "grey_input": grey_input,
        "saturation_balance": saturation_balance,
        "backbone": backbone,
        "frozen_blocks": frozen_blocks,
        "wall_seconds": round(time.time() - started),
        "history": history,
        "parameters": model.classifier_parameters(),
    }
    (out_dir / f"{task}.train.json").write_text(json.dumps(summary, indent=2))
    if loso_report:  # the figures behind the threshold, beside the file
        (out_dir / f"{task}.loso.json").write_text(Path(loso_report).read_text())
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
