"""Port libfacedetection's YuNet (BSD-3-Clause, shipped compiled in the `yuface` wheel) to ONNX.

`python -m training.convert_yunet` reads the 53 conv layers the installed library actually
uses (its `g_pFilters`, filled on the first detection call) and writes `models/yunet.onnx`
plus `models/yunet.LICENSE`. `facecheck.yunet_onnx.YuNetOnnx` runs it with the library's
post-processing; the network is the one of libfacedetection's `objectdetect_cnn`.

Model input `image`: uint8 [1, H, W, 3], the BGR image as it is (any H, W); the graph pads
it with zeros at the bottom and right to multiples of 32 and feeds 0-255 floats to the first
conv, as the library does. Outputs `stride8`, `stride16`, `stride32`: float32
[1, 16, ceil(H/32)*32/s, ceil(W/32)*32/s], channels 0 cls logit, 1 obj logit, 2-5 box
(dx, dy, log w, log h), 6-15 landmarks (dx, dy) x 5, all in units of the stride s, relative
to the cell's top-left corner.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import onnx
import yuface
from onnx import TensorProto, helper, numpy_helper

from facecheck.yunet_onnx import MODEL as OUT

WHEEL = Path(yuface.__file__).parent
LIBRARY = WHEEL / "libfacedetection.so"
LICENSE = WHEEL.parent / "yuface-2023.5.1.dist-info" / "LICENSE"
NUM_LAYERS = 53
# The four heads of one level share an input: their 1x1 convs become one 64->16 conv and their
# 3x3 depthwise convs one 16-channel conv. Layer indices (pointwise, depthwise) per level,
# in output-channel order cls, obj, box, landmarks.
HEADS = {
    8: [(29, 30), (41, 42), (35, 36), (47, 48)],
    16: [(31, 32), (43, 44), (37, 38), (49, 50)],
    32: [(33, 34), (45, 46), (39, 40), (51, 52)],
}


class _Blob(ctypes.Structure):  # CDataBlob<float>
    _fields_ = [(n, ctypes.c_int) for n in ("rows", "cols", "channels", "channel_step")] + [
        ("data", ctypes.c_void_p)
    ]


class _Filters(ctypes.Structure):  # Filters<float>
    _fields_ = [
        ("channels", ctypes.c_int),
        ("num_filters", ctypes.c_int),
        ("is_depthwise", ctypes.c_bool),
        ("is_pointwise", ctypes.c_bool),
        ("with_relu", ctypes.c_bool),
        ("weights", _Blob),
        ("biases", _Blob),
    ]


def _blob(blob: _Blob) -> np.ndarray:
    """rows*cols x channels, without the padding each cell carries up to channel_step bytes."""
    step = blob.channel_step // 4
    cells = blob.rows * blob.cols
    flat = np.ctypeslib.as_array((ctypes.c_float * (cells * step)).from_address(blob.data))
    return flat.reshape(cells, step)[:, : blob.channels].copy()


_LIB = ctypes.CDLL(str(LIBRARY))
_FACEDETECT_CNN = _LIB._Z14facedetect_cnnPhS_iii  # facedetect_cnn(result, bgr, width, height, step)
_FACEDETECT_CNN.restype = ctypes.c_void_p
_FACEDETECT_CNN.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
_RESULT_BYTES = 0x9000  # the library's result-buffer size: an int count, then 16 int16 per face


def library_detect(bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The library's own detection, the reference for the port: confidences (0-100), XYWH
    boxes, landmarks. (yuface.detect would leak its result buffer on every call.)"""
    buf = np.zeros(_RESULT_BYTES, np.uint8)
    bgr = np.ascontiguousarray(bgr)
    height, width = bgr.shape[:2]
    _FACEDETECT_CNN(buf.ctypes.data, bgr.ctypes.data, width, height, bgr.strides[0])
    n = int(buf[:4].view(np.int32)[0])
    result = buf[4 : 4 + n * 32].view(np.int16).reshape(n, 16).copy()
    result = result[result[:, 0] > conf * 100]
    return result[:, 0], result[:, 1:5], result[:, 5:15]


def read_layers() -> list[tuple[np.ndarray, np.ndarray]]:
    """ONNX Conv (weight, bias) of each of the library's 53 layers, as the library holds them."""
    library_detect(np.zeros((32, 32, 3), np.uint8), 0.5)  # runs init_parameters()
    layers = []
    for i, f in enumerate((_Filters * NUM_LAYERS).in_dll(_LIB, "g_pFilters")):
        w, b = _blob(f.weights), _blob(f.biases)[0]
        assert b.shape == (f.num_filters,) and f.is_pointwise != f.is_depthwise
        if i == 0:  # 3x3 stride-2 head conv, stored as 1x1 over 27 (+5 zero) channels (ky, kx, c)
            assert w.shape == (16, 32)
            w = w[:, :27].reshape(16, 3, 3, 3).transpose(0, 3, 1, 2)
        elif f.is_pointwise:  # (filter, channel)
            w = w.reshape(f.num_filters, f.channels, 1, 1)
        else:  # (ky * 3 + kx, channel)
            assert w.shape == (9, f.channels) and f.channels == f.num_filters
            w = w.T.reshape(f.channels, 1, 3, 3)
        layers.append((np.ascontiguousarray(w, np.float32), b.astype(np.float32)))
    return layers


class _Graph:
    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.layers, self.nodes, self.inits = layers, [], []

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, w: np.ndarray, b: np.ndarray, relu: bool, stride: int = 1) -> str:
        name = f"conv{sum(n.op_type == 'Conv' for n in self.nodes)}"
        self.inits += [numpy_helper.from_array(w, name + ".w"), numpy_helper.from_array(b, name + ".b")]
        k = w.shape[-1]
        group = w.shape[0] if w.shape[1] == 1 and k == 3 else 1
        y = self.node(
            "Conv",
            [x, name + ".w", name + ".b"],
            kernel_shape=[k, k],
            strides=[stride] * 2,
            pads=[k // 2] * 4,
            group=group,
        )
        return self.node("Relu", [y]) if relu else y

    def dp(self, x: str, p: int, d: int, relu: bool = True) -> str:
        """convolutionDP: 1x1 pointwise, then 3x3 depthwise (+ReLU); no ReLU in between."""
        return self.conv(self.conv(x, *self.layers[p], relu=False), *self.layers[d], relu=relu)

    def unit(self, x: str, first: int) -> str:
        """convolution4layerUnit: two convolutionDP, both with ReLU."""
        return self.dp(self.dp(x, first, first + 1), first + 2, first + 3)

    def pool(self, x: str) -> str:
        return self.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])

    def up_add(self, small: str, big: str) -> str:
        up = self.node(
            "Resize",
            [small, "", "scales"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        return self.node("Add", [up, big])

    def head(self, x: str, stride: int) -> str:
        pw = [self.layers[p] for p, _ in HEADS[stride]]
        dw = [self.layers[d] for _, d in HEADS[stride]]
        y = self.conv(x, *(np.concatenate(t) for t in zip(*pw, strict=True)), relu=False)
        return self.conv(y, *(np.concatenate(t) for t in zip(*dw, strict=True)), relu=False)


def build(layers: list[tuple[np.ndarray, np.ndarray]]) -> onnx.ModelProto:
    g = _Graph(layers)
    ints = {"one": [1], "three": [3], "m32": [32], "z5": [0] * 5, "z1": [0]}
    g.inits += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items()]
    g.inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    # zeros at the bottom and right up to multiples of 32: pads (N, H, W, C begin; N, H, W, C end)
    hw = g.node("Slice", [g.node("Shape", ["image"]), "one", "three"])
    pads = g.node("Concat", ["z5", g.node("Mod", [g.node("Neg", [hw]), "m32"]), "z1"], axis=0)
    x = g.node("Pad", ["image", pads])
    x = g.node("Transpose", [g.node("Cast", [x], to=TensorProto.FLOAT)], perm=[0, 3, 1, 2])
    x = g.conv(x, *layers[0], relu=True, stride=2)
    x = g.pool(g.dp(x, 1, 2))
    x = g.unit(g.unit(x, 3), 7)
    fb1 = g.unit(g.pool(x), 11)
    fb2 = g.unit(g.pool(fb1), 15)
    fb3 = g.dp(g.unit(g.pool(fb2), 19), 27, 28)
    fb2 = g.dp(g.up_add(fb3, fb2), 25, 26)
    fb1 = g.dp(g.up_add(fb2, fb1), 23, 24)
    outputs = []
    for stride, feat in ((8, fb1), (16, fb2), (32, fb3)):
        g.nodes.append(helper.make_node("Identity", [g.head(feat, stride)], [f"stride{stride}"]))
        outputs.append(
            helper.make_tensor_value_info(f"stride{stride}", TensorProto.FLOAT, [1, 16, None, None])
        )
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "height", "width", 3])
    graph = helper.make_graph(g.nodes, "yunet", [image], outputs, g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
        producer_name="training.convert_yunet",
        doc_string=__doc__,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main(out: Path = OUT) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(read_layers()), out)
    out.with_suffix(".LICENSE").write_text(LICENSE.read_text())
    print(f"wrote {out} ({out.stat().st_size} bytes) and {out.with_suffix('.LICENSE').name}")


if __name__ == "__main__":
    main()
