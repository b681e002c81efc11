"""libfacedetection's YuNet (BSD-3-Clause) on ONNX Runtime: a drop-in for `faces.detect_raw`.

`models/yunet.onnx` (written by `python -m training.convert_yunet` from the weights of the
installed `yuface` library) runs the network on the uint8 BGR image as it is; the rest is
the library's own post-processing, redone with its float32 arithmetic: sigmoid of cls and
obj, score = sqrt(cls * obj) >= 0.2, stable sort, top 1000, greedy NMS at IoU 0.45, top
512, box and landmark decoding, and truncation to int16 (score * 100, x, y, w, h,
landmarks). Only the convolutions add up in another order than the library's, so a value
can come out 1 off where it lies within float rounding of an integer."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from facecheck.onnx_session import cpu_session
from facecheck.settings import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "yunet.onnx"  # part of the code, not a swappable model
STRIDES = (8, 16, 32)
SCORE_MIN = 0.2  # the library's detection_output(..., nms 0.45, score 0.2, top_k 1000, keep 512)
NMS_IOU = np.float32(0.45)
TOP_K, KEEP_TOP_K = 1000, 512
_CLAMP = np.float32(88.3762626647949)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    """float(1 / (1 + exp(-double(v)))), as the library computes it."""
    return (1.0 / (1.0 + np.exp(-np.clip(v, -_CLAMP, _CLAMP).astype(np.float64)))).astype(np.float32)


def _nms(boxes: np.ndarray) -> list[int]:
    """Greedy NMS over boxes (x1, y1, x2, y2) sorted by score, with the library's float32
    arithmetic (IoU of candidate i against kept j; area i + area j is a fused multiply-add)."""
    n = len(boxes)
    if n <= 1:
        return list(range(n))
    a, b = boxes[:, None, :], boxes[None, :, :]  # a: candidate (bbox1), b: kept (bbox2)
    apart = ((b[..., :2] > a[..., 2:]) | (b[..., 2:] < a[..., :2])).any(2)
    iwh = np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])
    inter = iwh[..., 0] * iwh[..., 1]
    wh = boxes[:, 2:] - boxes[:, :2]
    area = wh[:, 0] * wh[:, 1]
    sizes = (wh[:, 0].astype(np.float64) * wh[:, 1])[:, None] + area
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iou = inter / (sizes.astype(np.float32) - inter)
    suppress = (~(apart | (iwh <= 0).any(2) | (iou <= NMS_IOU))).tolist()
    keep: list[int] = []
    for i in range(n):
        row = suppress[i]
        if not any(row[j] for j in keep):
            keep.append(i)
            if len(keep) == KEEP_TOP_K:
                break
    return keep


class YuNetOnnx:
    """`detect(bgr, conf)` returns what `facecheck.faces.detect_raw(bgr, conf)` returns."""

    def __init__(self, path: Path = MODEL, threads: int = 1) -> None:
        self.session = cpu_session(path, threads)

    def raw(self, bgr: np.ndarray) -> list[np.ndarray]:
        """The network's outputs, [1, 16, rows, cols] per stride 8, 16, 32."""
        return self.session.run(None, {"image": np.ascontiguousarray(bgr, np.uint8)[None]})

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _priors(shapes: tuple[tuple[int, int], ...]) -> np.ndarray:
        """Per cell of the three levels: the cell's top-left corner x, y and its stride (float32)."""
        levels = []
        for (rows, cols), stride in zip(shapes, STRIDES, strict=True):
            y, x = np.mgrid[:rows, :cols].reshape(2, -1) * stride
            levels.append(np.stack([x, y, np.full_like(x, stride)], 1))
        return np.concatenate(levels).astype(np.float32)

    def detect(self, bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Confidences (0-100), XYWH boxes and 10 landmark coordinates, int16, as `detect_raw`."""
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.shape[0] < 1 or bgr.shape[1] < 1:
            raise ValueError(f"expected an HxWx3 BGR image, got shape {bgr.shape}")
        outs = self.raw(bgr)
        pred = np.concatenate([o.reshape(16, -1) for o in outs], 1)
        # Faces scoring >= t depend only on the candidates scoring >= t (greedy NMS in score
        # order), so the rest need not be decoded. score >= t needs cls and obj >= t^2.
        low = min(max(SCORE_MIN, conf - 0.01), 0.99)
        logit = math.log(low * low / (1 - low * low)) - 0.01
        cells = np.flatnonzero((pred[0] > logit) & (pred[1] > logit))
        pred = pred[:, cells].T
        prob = _sigmoid(pred[:, :2])
        score = np.sqrt(prob[:, 0] * prob[:, 1])
        order = np.flatnonzero(score >= np.float32(low))
        order = order[np.argsort(-score[order], kind="stable")][:TOP_K]
        pred, score = pred[order], score[order]
        prior = self._priors(tuple(o.shape[2:] for o in outs))[cells[order]]
        prior, stride = prior[:, :2], prior[:, 2:]
        centre = pred[:, 2:4] * stride + prior
        half = np.exp(pred[:, 4:6].astype(np.float64)).astype(np.float32) * stride * np.float32(0.5)
        boxes = np.concatenate([centre - half, centre + half], 1)
        keep = _nms(boxes)
        boxes, score = boxes[keep], score[keep]
        marks = pred[keep, 6:16] * stride[keep] + np.tile(prior[keep], 5)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        values = np.concatenate([(score * np.float32(100))[:, None], xywh, marks], 1)
        result = np.trunc(values).astype(np.int32).astype(np.int16)
        result = result[result[:, 0] > conf * 100]
        return result[:, 0], result[:, 1:5], result[:, 5:15]
