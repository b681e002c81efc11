"""A small convolutional autoencoder trained on real faces only. What it gives back carries
the traces a generator's decoder leaves (transposed-convolution up-sampling: checkerboard
patterns, periodic peaks in the spectrum), which training.fakes.decoder_traces puts into
real faces, with no generator's weights.

    python -m training.autoencoder [--steps N] [--out PATH] [--limit N]

Trains on random patches of the deepfake set's train-split real faces (deepfake crops,
through training.data.face_crops), seed fixed, on the CPU, then exports ONNX to
.cache/autoencoder.onnx. The defaults finish within an hour on 2 cores."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from facecheck.onnx_session import cpu_session
from training.augment import _u8
from training.data import CACHE_DIR, dataset_dir, face_crops, read_manifest
from training.export import batch_dim, save_graph

DEFAULT_OUT = CACHE_DIR / "autoencoder.onnx"
STRIDE = 8  # three stride-2 stages: inputs are padded to a multiple of this
SEED = 1234
STEPS = 2500  # measured 1.2 s/step on the shared 2-core machine under load (0.65 CPU s/step): < 1 h
BATCH = 16
PATCH = 128  # training patch side; the network is fully convolutional and takes any size
LR = 2e-3


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2))


class Autoencoder(nn.Module):
    """N x 3 x H x W in [0, 1] (H, W multiples of STRIDE) -> the same shape: down to 1/8
    by strided convolutions, back up by transposed ones."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.encode = nn.Sequential(
            _down(3, width),
            _down(width, 2 * width),
            _down(2 * width, 4 * width),
            nn.Conv2d(4 * width, 4 * width, 3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.decode = nn.Sequential(
            _up(4 * width, 2 * width),
            _up(2 * width, width),
            _up(width, width // 2),  # full resolution: kept narrow, it costs the most
            nn.Conv2d(width // 2, 3, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _batch(crops: np.ndarray, rng: np.random.Generator, batch: int, patch: int) -> torch.Tensor:
    n, h, w = crops.shape[:3]
    out = np.empty((batch, patch, patch, 3), np.uint8)
    for b in range(batch):
        i, y, x = rng.integers(n), rng.integers(h - patch + 1), rng.integers(w - patch + 1)
        out[b] = crops[i, y : y + patch, x : x + patch]
        if rng.random() < 0.5:
            out[b] = out[b, :, ::-1]
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255


def train(
    crops: np.ndarray, steps: int, seed: int = SEED, batch: int = BATCH, patch: int = PATCH
) -> Autoencoder:
    """An autoencoder fitted (L1) to random patches of `crops` (N x S x S x 3 uint8 BGR)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    patch = min(patch, *crops.shape[1:3]) // STRIDE * STRIDE
    model = Autoencoder()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, LR, total_steps=max(steps, 1))
    model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(1, steps + 1):
        x = _batch(crops, rng, batch, patch)
        loss = (model(x) - x).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % max(1, steps // 20) == 0 or step == steps:
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            print(
                f"step {step}/{steps}  L1 {loss.item():.4f}  {wall / step:.3f} s/step "
                f"({cpu / step:.3f} CPU s/step)",
                flush=True,
            )
    return model.eval()


def export(model: Autoencoder, path: Path) -> float:
    """Write one self-contained ONNX file (any batch, any size that is a multiple of STRIDE)
    and return the largest |onnxruntime - torch| on a test input."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.rand(2, 3, 6 * STRIDE, 5 * STRIDE, generator=torch.Generator().manual_seed(0))
    rows, cols = torch.export.Dim("rows", min=1, max=256), torch.export.Dim("cols", min=1, max=256)
    dynamic = {"x": {0: batch_dim(), 2: STRIDE * rows, 3: STRIDE * cols}}
    save_graph(model, example, path, ("images", "reconstructions"), dynamic)
    check = torch.rand(1, 3, 9 * STRIDE, 7 * STRIDE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(check).numpy()
    got = cpu_session(path, 1).run(None, {"images": check.numpy()})[0]
    diff = float(np.abs(expected - got).max())
    if diff > 1e-4:
        raise RuntimeError(f"ONNX Runtime differs from torch by {diff:.2e}")
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB); max |ort - torch| = {diff:.2e}")
    return diff


def load_reconstruct(path: Path = DEFAULT_OUT, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """The exported autoencoder as `reconstruct(img) -> img` (H x W x 3 uint8 BGR, any size)."""
    session = cpu_session(Path(path), threads)

    def reconstruct(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        padded = cv2.copyMakeBorder(img, 0, -h % STRIDE, 0, -w % STRIDE, cv2.BORDER_REFLECT)
        x = padded.transpose(2, 0, 1)[None].astype(np.float32) / 255
        y = session.run(None, {"images": x})[0][0].transpose(1, 2, 0)
        return _u8(np.rint(y[:h, :w] * 255))

    return reconstruct


def real_face_crops(limit: int, rng: np.random.Generator) -> np.ndarray:
    """The deepfake set's train-split real faces, as deepfake-model crops."""
    from training import train as recipe  # its deepfake crop; not at import (its globals)

    recipe.apply_overrides(["deepfake"])
    samples = [s for s in read_manifest(dataset_dir("deepfake")) if s.split == "train" and s.label == "real"]
    if 0 < limit < len(samples):
        samples = [samples[i] for i in sorted(rng.choice(len(samples), limit, replace=False))]
    spec = recipe.deepfake_crop()
    return face_crops(samples, (spec,)).crops[spec]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, default=0, help="use only this many faces (smoke runs)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    crops = real_face_crops(args.limit, np.random.default_rng(SEED))
    print(f"{len(crops)} real faces ({time.perf_counter() - start:.0f} s)", flush=True)
    model = train(crops, args.steps)
    export(model, args.out)
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
