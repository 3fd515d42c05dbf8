"""The mn04 state dict's names and shapes, in PyTorch's state_dict order, derived from ``architecture`` alone.

The checkpoint readers check a state dict against it (exact names, shapes and dtypes, so the graph builder can
trust what it gets), and ``state_sha256`` hashes in its order. See docs/efficientat-mn04.md, section 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from audioclas.architecture import BLOCKS, HEAD_HIDDEN, NUM_CLASSES, STEM_CHANNELS, WIDTH, make_divisible, scaled

BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class Conv:
    """A conv + BatchNorm unit: its name prefix (``features.0``), shape, stride, groups and activation."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    groups: int = 1
    activation: str | None = None  # "RE", "HS" or None


@dataclass(frozen=True)
class SqueezeExcite:
    name: str  # ``features.4.block.2.conc_se_layers.0``
    channels: int
    squeezed: int


@dataclass(frozen=True)
class Block:
    """An inverted-residual block: its layers in order (convs and at most one squeeze-excite)."""

    layers: tuple[Conv | SqueezeExcite, ...]
    residual: bool


def blocks() -> Iterator[Block]:
    """The 15 inverted-residual blocks, ``features.1`` to ``features.15``."""
    for i, (c_in, kernel, expanded, c_out, se, activation, stride) in enumerate(BLOCKS, start=1):
        c_in, expanded, c_out = scaled(c_in), scaled(expanded), scaled(c_out)
        layers: list[Conv | SqueezeExcite] = []
        prefix = f"features.{i}.block"
        if expanded != c_in:
            layers.append(Conv(f"{prefix}.{len(layers)}", c_in, expanded, 1, activation=activation))
        layers.append(Conv(f"{prefix}.{len(layers)}", expanded, expanded, kernel, stride, expanded, activation))
        if se:
            squeezed = make_divisible(expanded // 4)
            layers.append(SqueezeExcite(f"{prefix}.{len(layers)}.conc_se_layers.0", expanded, squeezed))
        layers.append(Conv(f"{prefix}.{len(layers)}", expanded, c_out, 1))
        yield Block(tuple(layers), residual=stride == 1 and c_in == c_out)


def stem() -> Conv:
    return Conv("features.0", 1, scaled(STEM_CHANNELS), 3, 2, activation="HS")


def last_conv() -> Conv:
    width = scaled(BLOCKS[-1][3])
    return Conv(f"features.{len(BLOCKS) + 1}", width, 6 * width, 1, activation="HS")


def head_layers() -> tuple[tuple[str, int, int], ...]:
    """The classifier's Linear layers: (name, in, out); a hardswish sits between them."""
    hidden = make_divisible(HEAD_HIDDEN * WIDTH)
    return ("classifier.2", last_conv().c_out, hidden), ("classifier.5", hidden, NUM_CLASSES)


def _conv_tensors(conv: Conv) -> Iterator[tuple[str, tuple[int, ...]]]:
    yield f"{conv.name}.0.weight", (conv.c_out, conv.c_in // conv.groups, conv.kernel, conv.kernel)
    for tensor in BN_TENSORS:
        yield f"{conv.name}.1.{tensor}", () if tensor == "num_batches_tracked" else (conv.c_out,)


def state_layout() -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in MobileNetV3's state dict, in state_dict order (``num_batches_tracked``
    is the only int64 one, shape ())."""
    layout: dict[str, tuple[int, ...]] = dict(_conv_tensors(stem()))
    for block in blocks():
        for layer in block.layers:
            if isinstance(layer, Conv):
                layout.update(_conv_tensors(layer))
            else:
                layout[f"{layer.name}.fc1.weight"] = (layer.squeezed, layer.channels)
                layout[f"{layer.name}.fc1.bias"] = (layer.squeezed,)
                layout[f"{layer.name}.fc2.weight"] = (layer.channels, layer.squeezed)
                layout[f"{layer.name}.fc2.bias"] = (layer.channels,)
    layout.update(_conv_tensors(last_conv()))
    for name, c_in, c_out in head_layers():
        layout[f"{name}.weight"] = (c_out, c_in)
        layout[f"{name}.bias"] = (c_out,)
    return layout
