"""Classification metrics, the confusion matrix (JSON + PNG) and per-class thresholds for multi-label tasks.

Single-label (``single_label_metrics``): accuracy, balanced accuracy (mean recall over the classes that occur),
macro-F1 (over the classes that occur in truth or prediction), per-class precision/recall/F1/support and the
confusion matrix (rows: true class, columns: predicted class).

Multi-label (``multilabel_metrics``): mAP (mean over classes with a positive of the average precision, i.e. the
area under the precision-recall curve as step function), and micro/macro F1 plus per-class precision/recall at
per-class thresholds; ``tune_thresholds`` picks each class's threshold to maximise its F1 on validation data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from audioclas.fileio import atomic_open


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(np.shape(numerator), dtype=np.float64),
                     where=np.asarray(denominator) > 0)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def _per_class(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    precision, recall = _safe_divide(tp, tp + fp), _safe_divide(tp, tp + fn)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, tp + fn)]


def single_label_metrics(truth: np.ndarray, scores: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Metrics for integer labels ``truth`` (n,) against class scores (n, C)."""
    predicted = scores.argmax(1)
    matrix = confusion_matrix(truth, predicted, len(names))
    tp = np.diag(matrix)
    fp, fn = matrix.sum(0) - tp, matrix.sum(1) - tp
    per_class = _per_class(tp, fp, fn, names)
    present = (tp + fn) > 0
    involved = present | (fp > 0)
    return {
        "examples": int(len(truth)),
        "accuracy": float((predicted == truth).mean()) if len(truth) else 0.0,
        "balanced_accuracy": float(np.mean([c["recall"] for c, p in zip(per_class, present) if p])) if present.any() else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c, i in zip(per_class, involved) if i])) if involved.any() else 0.0,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall step curve for one class (truth 0/1), NaN without positives."""
    positives = truth.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = truth[order]
    precision_at_hit = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at_hit * hits).sum() / positives)


def tune_thresholds(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-class thresholds (C,) maximising each class's F1 on (truth (n, C) 0/1, scores (n, C) in [0, 1]).

    The threshold sits halfway between the lowest accepted score and the next one below it; a class without
    positives keeps 0.5.
    """
    thresholds = np.full(scores.shape[1], 0.5)
    for c in range(scores.shape[1]):
        positives = truth[:, c].sum()
        if positives == 0:
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        sorted_scores, hits = scores[order, c], truth[order, c]
        tp = np.cumsum(hits)
        f1 = 2 * tp / (np.arange(1, len(hits) + 1) + positives)
        # Only cut where the score changes, so that equal scores fall on the same side.
        distinct = np.append(sorted_scores[1:] < sorted_scores[:-1], True)
        best = int(np.argmax(np.where(distinct, f1, -1)))
        below = sorted_scores[best + 1] if best + 1 < len(sorted_scores) else 0.0
        thresholds[c] = float((sorted_scores[best] + below) / 2)
    return thresholds


def multilabel_metrics(truth: np.ndarray, scores: np.ndarray, names: list[str], thresholds: np.ndarray) -> dict[str, Any]:
    """Metrics for a 0/1 matrix ``truth`` (n, C) against sigmoid scores (n, C) and per-class ``thresholds``."""
    ap = np.array([average_precision(truth[:, c], scores[:, c]) for c in range(truth.shape[1])])
    predicted = scores >= thresholds
    tp = (predicted & (truth == 1)).sum(0)
    fp = (predicted & (truth == 0)).sum(0)
    fn = (~predicted & (truth == 1)).sum(0)
    per_class = _per_class(tp, fp, fn, names)
    for entry, value, threshold in zip(per_class, ap, thresholds):
        entry["average_precision"] = None if np.isnan(value) else float(value)
        entry["threshold"] = float(threshold)
    micro_p, micro_r = _safe_divide(tp.sum(), tp.sum() + fp.sum()), _safe_divide(tp.sum(), tp.sum() + fn.sum())
    return {
        "examples": int(len(truth)),
        "mAP": float(np.nanmean(ap)) if not np.isnan(ap).all() else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class])) if per_class else 0.0,
        "micro_f1": float(_safe_divide(2 * micro_p * micro_r, micro_p + micro_r)),
        "subset_accuracy": float((predicted == (truth == 1)).all(1).mean()) if len(truth) else 0.0,
        "per_class": per_class,
    }


def headline(metrics: dict[str, Any]) -> float:
    """The one number early stopping and model selection maximise: macro-F1 (single-label) or mAP (multi-label)."""
    return metrics["mAP"] if "mAP" in metrics else metrics["macro_f1"]


# ---------------------------------------------------------------- confusion matrix files


def confusion_image(matrix: np.ndarray, names: list[str], cell: int = 28) -> Image.Image:
    """The confusion matrix as an image: rows true, columns predicted, shade = share of the true class."""
    matrix = np.asarray(matrix)
    count = len(names)
    font = ImageFont.load_default(size=12)
    labels = [name if len(name) <= 24 else name[:23] + "…" for name in names]
    header = "true \\ predicted"
    margin = 12 + int(max([font.getlength(label) for label in labels] + [font.getlength(header)]))
    size = (margin + count * cell + 10, margin + count * cell + 10)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    share = _safe_divide(matrix, matrix.sum(1, keepdims=True))
    for row in range(count):
        y = margin + row * cell
        draw.text((4, y + cell // 2 - 6), labels[row], fill="black", font=font)
        for column in range(count):
            x = margin + column * cell
            shade = int(255 - 200 * share[row, column])
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(shade, shade, 255), outline=(220, 220, 220))
            if matrix[row, column]:
                text = str(int(matrix[row, column]))
                colour = "white" if share[row, column] > 0.6 else "black"
                draw.text((x + (cell - font.getlength(text)) / 2, y + cell // 2 - 6), text, fill=colour, font=font)
    # Column names: written across a strip, which is then turned to read upwards above the columns.
    strip = Image.new("RGB", (margin, count * cell), "white")
    strip_draw = ImageDraw.Draw(strip)
    for column, label in enumerate(labels):
        strip_draw.text((6, column * cell + cell // 2 - 6), label, fill="black", font=font)
    image.paste(strip.rotate(90, expand=True), (margin, 0))
    draw.text((4, margin - 18), header, fill="black", font=font)
    return image


def write_confusion(matrix: np.ndarray, names: list[str], folder: Path, stem: str = "confusion_matrix") -> None:
    """``stem.json`` ({classes, matrix}) and ``stem.png`` in ``folder``, each written atomically."""
    with atomic_open(folder / f"{stem}.json", "w", encoding="utf-8") as stream:
        json.dump({"classes": names, "rows": "true class", "columns": "predicted class",
                   "matrix": np.asarray(matrix).tolist()}, stream, indent=1)
    with atomic_open(folder / f"{stem}.png", "wb") as stream:
        confusion_image(matrix, names).save(stream, format="PNG")
