"""A saved model's card: ``README.md`` in its folder, Markdown built from ``model.json`` (and ``config.json``).

``write_model_folder`` writes it with the other files; ``read_card`` returns it, or builds it on the fly for a
model saved before cards existed (or whose card was deleted), so every model has one.

Names, class names, paths and the other strings a user chose go into the card through ``escape``: every ASCII
punctuation character is backslash-escaped (CommonMark's rule), so a class named ``[x](http://…)`` or ``<img …>``
renders as that text, never as a link or HTML, and ``|`` cannot break a table.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

from audioclas.training.store.folder import read_folder_info
from audioclas.training.store.names import ModelError

CARD_FILE = "README.md"
MAX_CARD_BYTES = 1 << 20  # a card read back larger than this is rebuilt from model.json instead
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
# The training options a card lists (the rest are in config.json), in this order.
CARD_OPTIONS = (
    "head", "hidden", "dropout", "class_weights", "epochs", "batch_size", "lr", "lr_schedule", "l2", "seed",
    "val_fraction", "early_stopping", "window", "hop", "pad", "finetune", "finetune_epochs", "finetune_batch_size",
    "backbone_lr", "mixup", "speed", "time_shift", "gain_db", "noise_snr", "spec_masks", "background", "label_column",
)  # fmt: skip
_FINETUNE_ONLY = frozenset(CARD_OPTIONS[CARD_OPTIONS.index("finetune_epochs") : CARD_OPTIONS.index("background")])
SPLITS = ("train", "val", "test")


def escape(text: object) -> str:
    """``text`` as literal Markdown text on one line: punctuation backslash-escaped, line breaks made spaces."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))


def model_card(info: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """The Markdown card of a model from its ``model.json`` (``info``) and ``config.json`` (``config``, if any)."""
    classes: list[str] = list(info.get("classes") or [])
    backbone = info.get("backbone") or {}
    finetuned = bool(backbone.get("finetuned"))
    task = "multi-label" if info.get("multilabel") else "single-label"
    window = info.get("window") or {}
    lines = [
        f"# {escape(info.get('name', ''))}",
        "",
        f"A {task} classifier of {len(classes)} classes on EfficientAT mn04 embeddings "
        f"({'fine-tuned' if finetuned else 'frozen'} backbone, {escape((info.get('head') or {}).get('type', ''))} "
        f"head), trained with audioclas on {escape(info.get('created', ''))}.",
        "",
        *_classes(classes, (info.get("dataset") or {}).get("counts") or {}, info.get("thresholds")),
        *_data(info.get("dataset") or {}),
        *_options(info, config),
        *_metrics(info.get("metrics") or {}, info.get("finetune")),
        "## Backbone",
        "",
        f"- {escape(backbone.get('name', 'EfficientAT mn04_as'))}"
        + (" fine-tuned on this data" if finetuned else " as pretrained on AudioSet (frozen)"),
        f"- weights sha256: `{_hex(backbone.get('sha256'))}`",
    ]
    if finetuned:
        lines.append(f"- pretrained network sha256: `{_hex(backbone.get('pretrained_sha256'))}`")
    lines += [
        "- licence: EfficientAT code and weights MIT (Florian Schmid et al.); AudioSet labels CC BY 4.0 (Google)",
        "",
        "## Intended use and limits",
        "",
        f"- Classifies audio into the {len(classes)} classes above only: a sound of another kind still gets "
        + ("no label or a wrong one." if info.get("multilabel") else "one of them (the highest score)."),
        f"- Reads {_seconds(window.get('window'))} s windows"
        + (f", hop {_seconds(window['hop'])} s" if window.get("hop") else "")
        + f"; clips shorter than a window are padded ({escape(window.get('pad', '?'))}).",
        "- The metrics above were measured only on this dataset's own splits: expect other recordings "
        "(microphones, places, noise) to score differently, and check on your own data before relying on it.",
        "",
    ]
    return "\n".join(lines)


def _classes(classes: list[str], counts: dict[str, list[int]], thresholds: list[float] | None) -> list[str]:
    """One row per class: its examples in each split, and its decision threshold (multi-label)."""
    splits = [split for split in SPLITS if split in counts] + [s for s in counts if s not in SPLITS]
    header = [f"{escape(s)} examples" for s in splits] + (["threshold"] if thresholds else [])
    lines = ["## Classes", "", "| class | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for index, name in enumerate(classes):
        cells = [escape(counts[s][index]) if index < len(counts[s]) else "" for s in splits]
        if thresholds:
            cells.append(format_metric(thresholds[index]) if index < len(thresholds) else "")
        lines.append(f"| {escape(name)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _data(dataset: dict[str, Any]) -> list[str]:
    lines = ["## Data", "", f"- dataset: {escape(dataset.get('path', '?'))} ({escape(dataset.get('layout', '?'))})"]
    examples = dataset.get("examples") or {}
    for split, files in (dataset.get("files") or {}).items():
        lines.append(f"- {escape(split)}: {escape(examples.get(split, '?'))} examples from {escape(files)} audio files")
    return [*lines, ""]


def _options(info: dict[str, Any], config: dict[str, Any] | None) -> list[str]:
    training = info.get("training") or {}
    lines = [
        "## Training",
        "",
        f"- stopped: {escape(training.get('stopped', '?'))}, best epoch {escape(training.get('best_epoch', '?'))} of "
        f"{escape(training.get('epochs_run', '?'))}",
    ]
    if info.get("finetune"):
        kept = "fine-tuned network" if info["finetune"].get("kept") == "finetuned" else "frozen head"
        lines.append(f"- kept the {kept}: {escape(info['finetune'].get('selection', ''))}")
    if config:
        shown = [key for key in CARD_OPTIONS if key in config and (config.get("finetune") or key not in _FINETUNE_ONLY)]
        lines += ["", "| option | value |", "|---|---|"]
        lines += [f"| {key} | {_option(config[key])} |" for key in shown]
    return [*lines, ""]


def _metrics(metrics: dict[str, Any], finetune: dict[str, Any] | None) -> list[str]:
    rows: list[tuple[str, dict[str, Any]]] = [(s, v) for s, v in metrics.items() if s not in ("frozen", "finetuned")]
    if finetune:  # both networks side by side, whichever was kept
        for network in ("frozen", "finetuned"):
            rows += [(f"{network} {split}", values) for split, values in (metrics.get(network) or {}).items()]
    lines = ["## Metrics", ""]
    if not rows:
        return [*lines, "No validation or test split: no metrics were measured.", ""]
    names = list(dict.fromkeys(k for _, v in rows for k, x in v.items() if isinstance(x, (int, float))))
    lines += ["| split | " + " | ".join(escape(name) for name in names) + " |", "|---" * (len(names) + 1) + "|"]
    for split, values in rows:
        lines.append(f"| {escape(split)} | " + " | ".join(format_metric(values.get(name)) for name in names) + " |")
    return [*lines, ""]


def format_metric(value: Any) -> str:
    """A metric as a card shows it: counts as integers, scores to four decimals."""
    if isinstance(value, bool) or value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _option(value: Any) -> str:
    return "default" if value is None else escape(str(value).lower() if isinstance(value, bool) else value)


def _seconds(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else "?"


def _hex(value: Any) -> str:
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else "unknown"


def read_card(folder: Path) -> str:
    """The card of the model in ``folder``: its ``README.md``, or one built now from ``model.json`` when that file
    is missing, not a regular file or too large (a model saved before cards); raises ``ModelError`` as
    ``read_folder_info``."""
    card = folder / CARD_FILE
    try:
        status = card.lstat()
        if stat.S_ISREG(status.st_mode) and status.st_size <= MAX_CARD_BYTES:
            return card.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    info = read_folder_info(folder)
    try:
        return model_card(info, _config(folder))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:  # a mistyped model.json
        raise ModelError(f"saved model {folder} is damaged ({type(error).__name__} in model.json)") from None


def _config(folder: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None
