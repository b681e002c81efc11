"""Fake families: each one way fakes are made, the unit of leave-one-family-out (training.lofo).

A real fake's family is read from its manifest (training.data.family_of: the `family` column,
else its kind's KIND_FAMILIES name). A synthetic family is made on the fly from a real face
crop, and SYNTHETIC_FAMILIES below is the one place that names them: every family of
training.fakes (decoder_traces once `python -m training.autoencoder` has written its
autoencoder). A family's key there is also its share's key in training.train's DEEPFAKE_MIX:
training draws only those with a share (self_blend today); the others are held-out families
by construction. A maker takes (crop, landmarks, rng, donor) and returns (fake crop, region it
changed, H x W float32 0-1); `donor()` draws another real face (crop, landmarks), and only the
families that take one (fakes.NEEDS) call it, so the others draw nothing more from rng."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

import numpy as np

from training import fakes
from training.autoencoder import DEFAULT_OUT as AUTOENCODER
from training.autoencoder import load_reconstruct

Donor = Callable[[], tuple[np.ndarray, np.ndarray]]
SyntheticFamily = Callable[
    [np.ndarray, np.ndarray, np.random.Generator, Donor], tuple[np.ndarray, np.ndarray]
]


@functools.cache
def _reconstruct():
    return load_reconstruct(AUTOENCODER)


def _from_fakes(name: str, img: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, donor: Donor):
    """training.fakes' family `name` (fakes.make_fake), given what fakes.NEEDS says it takes."""
    needs, given = fakes.NEEDS.get(name, ()), {}
    if "donor" in needs:
        given["donor"], given["donor_landmarks"] = donor()
    if "reconstruct" in needs:
        given["reconstruct"] = _reconstruct()
    return fakes.make_fake(name, img, landmarks, rng, **given)


def _can_make(name: str) -> bool:
    return "reconstruct" not in fakes.NEEDS.get(name, ()) or AUTOENCODER.exists()


SYNTHETIC_FAMILIES: dict[str, SyntheticFamily] = {
    name: functools.partial(_from_fakes, name) for name in fakes.FAMILIES if _can_make(name)
}
FOLD_JOIN = "+"  # a model folder family-a+b/ holds out families a and b (training.lofo)


def real_families(samples) -> set[str]:
    """The families of the real fakes among `samples` (training.data.Sample)."""
    from training.data import family_of

    return {family_of(s) for s in samples if s.label != "real"}


def names(spec: str) -> list[str]:
    """The families of a comma (or FOLD_JOIN) separated list."""
    return [n for n in spec.replace(FOLD_JOIN, ",").split(",") if n]


def parse(spec: str, known: set[str]) -> list[str]:
    """names(spec), each of which must be `known`."""
    unknown = sorted(set(names(spec)) - known)
    if unknown:
        raise SystemExit(f"unknown families {', '.join(unknown)}: known are {', '.join(sorted(known))}")
    return names(spec)


def synthetic_fakes(name: str, crops: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """One fake of family `name` per real crop, the same for the same crops: the family's
    draws come from (seed, its name), whichever other families are made beside it; a donor
    is another of the crops."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    make = SYNTHETIC_FAMILIES[name]
    out = np.empty_like(crops)
    for i, (crop, marks) in enumerate(zip(crops, landmarks, strict=True)):

        def donor(i=i) -> tuple[np.ndarray, np.ndarray]:
            j = (i + 1 + int(rng.integers(len(crops) - 1))) % len(crops) if len(crops) > 1 else i
            return crops[j], landmarks[j]

        out[i] = make(crop, marks, rng, donor)[0]
    return out
