"""Looping or zero padding for clips shorter than the 10 s window: which gives labels closer to the truth?

    .venv/bin/python benchmarks/short_clip_padding.py

Two measurements on the real clips of ../shared:
1. robin (2.7 s) and trumpet (5.3 s): distance of each window's scores to the network run on the whole
   clip unpadded (the reference `probs`, which never saw padding).
2. the first L seconds (L = 1, 2, 3, 5) of every clip at least 10 s long, tagged alone, against the
   full 10 s window it was cut from: mean absolute score difference over the 527 classes, and whether
   the 10 s window's top-1 label is the short clip's top-1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from audioclas import Tagger  # noqa: E402

RATE = 32000


def main() -> None:
    tagger = Tagger()
    ref = np.load(SHARED / "reference" / "efficientat_mn04.npz")
    print("1. short reference clips: max / mean |score - unpadded whole-clip score|")
    for clip in ("robin", "trumpet"):
        wave = ref[f"{clip}__wave_int16"].astype(np.float32) / 32768
        for pad in ("loop", "zeros"):
            scores = tagger.predict((wave, RATE), pad=pad, top_k=1)
            diff = np.abs(scores.scores - ref[f"{clip}__probs"])
            print(f"   {clip:<8} {pad:<6} max {diff.max():.3f}  mean {diff.mean():.4f}  top-1 {scores.labels[0].name}")

    print("2. first L seconds of each >=10 s clip vs its full first window (mean |diff|, top-1 agreement)")
    long_clips = [c for c in ref["clip_ids"] if len(ref[f"{c}__wave_int16"]) >= 10 * RATE]
    for seconds in (1, 2, 3, 5):
        row = []
        for pad in ("loop", "zeros"):
            diffs, agree = [], 0
            for clip in long_clips:
                wave = ref[f"{clip}__wave_int16"].astype(np.float32) / 32768
                truth = ref[f"{clip}__win_probs"][0]
                short = tagger.predict((wave[: seconds * RATE], RATE), pad=pad, top_k=1)
                diffs.append(np.abs(short.scores - truth).mean())
                agree += short.labels[0].index == int(np.argmax(truth))
            row.append(f"{pad}: {np.mean(diffs):.4f}, top-1 {agree}/{len(long_clips)}")
        print(f"   L = {seconds} s   " + "   ".join(row))


if __name__ == "__main__":
    main()
