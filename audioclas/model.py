"""EfficientAT mn04_as: MobileNetV3-Large at width 0.4 on log-mel input, 527 AudioSet logits + 384-d embedding.

Module and parameter names follow the upstream checkpoint so its state_dict loads with ``strict=True``.
See docs/efficientat-mn04.md, sections 3 and 4.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn

from .architecture import BLOCKS, BN_EPS, HEAD_HIDDEN, NUM_CLASSES, STEM_CHANNELS, WIDTH, make_divisible, scaled
from .features import LogMelFrontEnd
from .weights import resolve_weights


class ConvBN(nn.Sequential):
    """Conv2d without bias (``.0``), BatchNorm (``.1``) and an optional activation (``.2``)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, activation: str | None = None
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS),
        ]
        if activation:
            layers.append(nn.ReLU(inplace=True) if activation == "RE" else nn.Hardswish(inplace=True))
        super().__init__(*layers)

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Fold the (frozen) BatchNorm into the conv's weight and bias; inference only, irreversible."""
        conv, bn = self[0], self[1]
        if not isinstance(bn, nn.BatchNorm2d):
            return
        assert isinstance(conv, nn.Conv2d) and bn.running_mean is not None and bn.running_var is not None
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = conv.weight.double() * scale[:, None, None, None]
        bias = bn.bias.double() - bn.running_mean.double() * scale
        conv.weight.copy_(weight)
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
        self[1] = nn.Identity()


class ChannelSE(nn.Module):
    """Squeeze-excite over channels with Linear layers and a logistic (not hard) sigmoid."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate: Tensor = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
        return x * gate[:, :, None, None]


class ConcurrentSE(nn.Module):
    """Upstream wrapper that could combine SE over several axes; this checkpoint has one (channel) SE."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, squeezed)])

    def forward(self, x: Tensor) -> Tensor:
        excited: Tensor = self.conc_se_layers[0](x)
        return excited


class InvertedResidual(nn.Module):
    """[1x1 expand] -> kxk depthwise (carries the stride) -> [SE] -> 1x1 project, residual if shapes match."""

    def __init__(
        self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, activation: str, stride: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(ConvBN(c_in, expanded, 1, activation=activation))
        layers.append(ConvBN(expanded, expanded, kernel, stride, groups=expanded, activation=activation))
        if se:
            layers.append(ConcurrentSE(expanded, make_divisible(expanded // 4)))
        layers.append(ConvBN(expanded, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = x + self.block(x) if self.residual else self.block(x)
        return out


class MobileNetV3(nn.Module):
    """(B, 1, 128, T) log-mel -> (logits (B, 527), embedding (B, 384))."""

    def __init__(self) -> None:
        super().__init__()
        blocks = [
            InvertedResidual(scaled(c_in), k, scaled(exp), scaled(c_out), se, act, s)
            for c_in, k, exp, c_out, se, act, s in BLOCKS
        ]
        last_width = scaled(BLOCKS[-1][3])
        self.features = nn.Sequential(
            ConvBN(1, scaled(STEM_CHANNELS), 3, 2, activation="HS"),
            *blocks,
            ConvBN(last_width, 6 * last_width, 1, activation="HS"),
        )
        # Upstream's classifier starts with pooling and flatten (indices 0, 1); we pool once ourselves
        # and keep the checkpoint's names for the layers that hold weights.
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("2", nn.Linear(6 * last_width, make_divisible(HEAD_HIDDEN * WIDTH))),
                    ("3", nn.Hardswish(inplace=True)),
                    ("4", nn.Dropout(0.2)),
                    ("5", nn.Linear(make_divisible(HEAD_HIDDEN * WIDTH), NUM_CLASSES)),
                ]
            )
        )

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        embedding: Tensor = self.features(mel).mean((2, 3))
        logits: Tensor = self.classifier(embedding)
        return logits, embedding


class EfficientAT(nn.Module):
    """Front end + network: (B, N) float32 waveform at 32 kHz -> (logits (B, 527), embedding (B, 384))."""

    def __init__(self) -> None:
        super().__init__()
        self.front_end = LogMelFrontEnd()
        self.net = MobileNetV3()

    def forward(self, waveform: Tensor) -> tuple[Tensor, Tensor]:
        outputs: tuple[Tensor, Tensor] = self.net(self.front_end(waveform))
        return outputs

    def fuse_for_inference(self) -> EfficientAT:
        """Fold every BatchNorm into its conv and switch to channels_last, about 3x faster on CPU.

        Irreversible: the state_dict no longer matches the checkpoint. The network input needs no
        conversion, since a one-channel NCHW tensor is already channels_last.
        """
        for module in self.modules():
            if isinstance(module, ConvBN):
                module.fold_batchnorm()
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format
        return self.eval()


def load_efficientat(weights: str | Path | None = None, fuse: bool = True) -> EfficientAT:
    """The pretrained model in eval mode; ``weights`` as in :func:`audioclas.weights.resolve_weights`."""
    model = EfficientAT()
    state = torch.load(resolve_weights(weights), map_location="cpu", weights_only=True)
    model.net.load_state_dict(state, strict=True)
    model.eval()
    return model.fuse_for_inference() if fuse else model
