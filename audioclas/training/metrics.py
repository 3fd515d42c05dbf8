"""Classification metrics, the confusion matrix (JSON + PNG) and per-class thresholds for multi-label tasks.

The metrics are scikit-learn's (imported when first needed: it takes seconds to import), so that a report means
what the standard definitions say, ties included.

Single-label (``single_label_metrics``): accuracy, balanced accuracy (mean recall over the classes that occur),
macro-F1 (over the classes that occur in truth or prediction), per-class precision/recall/F1/support and the
confusion matrix (rows: true class, columns: predicted class).

Multi-label (``multilabel_metrics``): mAP (mean over classes with a positive of the average precision, i.e. the
area under the precision-recall curve as step function, equal scores counted together), and micro/macro F1 plus
per-class precision/recall at per-class thresholds; ``tune_thresholds`` picks each class's threshold to maximise
its F1 on validation data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from audioclas.fileio import atomic_open


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    quotient: np.ndarray = np.divide(
        numerator, denominator, out=np.zeros(np.shape(numerator), dtype=np.float64), where=np.asarray(denominator) > 0
    )
    return quotient


def _per_class(truth: np.ndarray, predicted: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class (0 where undefined), for labels or 0/1 label matrices."""
    from sklearn.metrics import precision_recall_fscore_support

    if not len(truth):
        precision = recall = f1 = support = np.zeros(len(names))
    elif truth.ndim == 2:  # one class at a time: a single-column matrix would be read as a binary task
        columns = [
            precision_recall_fscore_support(truth[:, c], predicted[:, c], labels=[1], zero_division=0)
            for c in range(truth.shape[1])
        ]
        precision, recall, f1, support = (np.concatenate(values) for values in zip(*columns))
    else:
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, predicted, labels=np.arange(len(names)), zero_division=0
        )
    return [
        {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, support)
    ]


def single_label_metrics(truth: np.ndarray, scores: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Metrics for integer labels ``truth`` (n,) against class scores (n, C)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    truth = np.asarray(truth, dtype=np.int64)
    predicted = scores.argmax(1)
    if not len(truth):
        return {
            "examples": 0,
            "accuracy": 0.0,
            "balanced_accuracy": 0.0,
            "macro_f1": 0.0,
            "per_class": _per_class(truth, predicted, names),
            "confusion_matrix": np.zeros((len(names), len(names)), dtype=np.int64).tolist(),
        }
    return {
        "examples": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        # balanced_accuracy_score, without its warning when a class is predicted that does not occur
        "balanced_accuracy": float(recall_score(truth, predicted, labels=np.unique(truth), average="macro")),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "per_class": _per_class(truth, predicted, names),
        "confusion_matrix": confusion_matrix(truth, predicted, labels=np.arange(len(names))).tolist(),
    }


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall step curve for one class (truth 0/1), NaN without positives."""
    from sklearn.metrics import average_precision_score

    if not np.any(truth):
        return float("nan")
    return float(average_precision_score(truth, scores))


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


def multilabel_metrics(
    truth: np.ndarray, scores: np.ndarray, names: list[str], thresholds: np.ndarray
) -> dict[str, Any]:
    """Metrics for a 0/1 matrix ``truth`` (n, C) against sigmoid scores (n, C) and per-class ``thresholds``."""
    from sklearn.metrics import accuracy_score, f1_score

    truth = np.asarray(truth, dtype=np.int64)
    ap = np.array([average_precision(truth[:, c], scores[:, c]) for c in range(truth.shape[1])])
    predicted = (scores >= thresholds).astype(np.int64)
    per_class = _per_class(truth, predicted, names)
    for entry, value, threshold in zip(per_class, ap, thresholds):
        entry["average_precision"] = None if np.isnan(value) else float(value)
        entry["threshold"] = float(threshold)
    return {
        "examples": len(truth),
        "mAP": float(np.nanmean(ap)) if not np.isnan(ap).all() else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class])) if per_class else 0.0,
        # micro-F1 pools every (clip, class) decision: the F1 of the flattened matrices
        "micro_f1": float(f1_score(truth.ravel(), predicted.ravel(), zero_division=0)) if truth.size else 0.0,
        "subset_accuracy": float(accuracy_score(truth, predicted)) if len(truth) else 0.0,
        "per_class": per_class,
    }


def headline(metrics: dict[str, Any]) -> float:
    """The one number early stopping and model selection maximise: macro-F1 (single-label) or mAP (multi-label)."""
    return float(metrics["mAP"] if "mAP" in metrics else metrics["macro_f1"])


def split_summaries(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics by split without the per-class rows and the confusion matrix."""
    return {
        split: {k: v for k, v in values.items() if k not in ("per_class", "confusion_matrix")}
        for split, values in metrics.items()
    }


def display_score(metrics: dict[str, Any]) -> str:
    """One split's score for a log line: mAP (multi-label) or accuracy."""
    return f"mAP {metrics['mAP']:.4f}" if "mAP" in metrics else f"accuracy {metrics['accuracy']:.4f}"


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
        json.dump(
            {
                "classes": names,
                "rows": "true class",
                "columns": "predicted class",
                "matrix": np.asarray(matrix).tolist(),
            },
            stream,
            indent=1,
        )
    with atomic_open(folder / f"{stem}.png", "wb") as stream:
        confusion_image(matrix, names).save(stream, format="PNG")
