"""``--specific`` against plain ranking on the real clips: is the top label the specific sound, or its ancestor?

    .venv/bin/python benchmarks/specific_labels.py [--digits N]

For each clip of ../shared/audio (and N FSDD spoken digits, 5 speakers, from the test split), the clip-level top 3
with plain ranking and with ``specific=True``. Each clip has truth classes written down from its description (the
README of ../shared/audio): the most specific AudioSet classes we know it holds. The top-1 label is

- **right** when it is a truth class, an ancestor of one, or below one (the clip's branches of the ontology);
- **specific** when it is right and not a strict ancestor of a truth class ("Music" for a bass guitar clip is
  right but not specific).

The summary counts both and gives the mean ontology depth of the top-1 label (0: a top class such as "Animal").
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from audioclas import Tagger  # noqa: E402
from audioclas.ontology import audioset_ontology  # noqa: E402

AUDIO = SHARED / "audio"
TRUTH = {  # clip: the most specific classes its description names (any of them is right)
    "456440__inspectorj__bird-whistling-robin-single-13.ogg": ("Bird vocalization, bird call, bird song",),
    "sorohanro_-_solo-trumpet-06.ogg": ("Trumpet",),
    "metro_station-paris.wav": ("Subway, metro, underground", "Train"),
    "198-209-0000.ogg": ("Female speech, woman speaking", "Narration, monologue"),  # audiobooks: read narration
    "3436-172162-0000.ogg": ("Male speech, man speaking", "Narration, monologue"),
    "5703-47212-0000.ogg": ("Male speech, man speaking", "Narration, monologue"),
    "admiralbob77_-_Choice_-_Drum-bass.ogg": ("Bass guitar", "Drum"),
    "pibble.ogg": ("Howl",),
    "glacier-bay-humpback.ogg": ("Whale vocalization",),
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg": (
        "Bowed string instrument",
        "Orchestra",
    ),
}
DIGIT_TRUTH = ("Speech",)  # FSDD: one spoken digit, six speakers (men's and a woman's voices): the Speech family


def digits(count: int) -> list[Path]:
    root = SHARED / "datasets" / "fsdd"
    lines = (root / "test.txt").read_text().splitlines()
    chosen = random.Random(0).sample(lines, min(count, len(lines)))
    return [root / line.split()[0] for line in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=30, help="FSDD spoken digits to add (default 30)")
    args = parser.parse_args()
    ontology = audioset_ontology()
    tagger = Tagger()
    clips = [(AUDIO / name, truth) for name, truth in TRUTH.items()]
    clips += [(path, DIGIT_TRUTH) for path in digits(args.digits)]
    tally = {(group, mode): [0, 0, 0, 0] for group in ("real", "digits") for mode in ("plain", "specific")}
    print("| clip | truth | top 3, plain | top 3, --specific |\n|---|---|---|---|")  # counts: right, specific, depth, n
    for path, truth_names in clips:
        truths = [node for name in truth_names if (node := ontology.find(name)) is not None]
        assert len(truths) == len(truth_names), truth_names
        above = {node.id for truth in truths for node in ontology.ancestors(truth.id)}
        below = {node.id for truth in truths for node in [truth, *ontology.descendants(truth.id)]}
        above -= below
        branch = above | below
        row, group = [], "real" if path.parent == AUDIO else "digits"
        for mode in ("plain", "specific"):
            labels = tagger.predict(path, top_k=3, specific=mode == "specific").labels
            top, counts = labels[0].id or "", tally[group, mode]
            counts[0] += top in branch
            counts[1] += top in branch and top not in above
            counts[2] += ontology.depth(top)
            counts[3] += 1
            row.append(", ".join(f"{x.name} {x.score:.2f}" for x in labels))
        if path.parent == AUDIO or path == clips[len(TRUTH)][0]:  # every real clip, and one digit as a sample
            print(f"| {path.name[:40]} | {'; '.join(truth_names)} | {row[0]} | {row[1]} |")
    print("\n| clips | ranking | right (in the truth's branch) | specific (truth or below) | mean depth |")
    print("|---|---|---|---|---|")
    for (group, mode), (right, specific, depth, n) in tally.items():
        if n:
            print(f"| {n} {group} clips | {mode} | {right}/{n} | {specific}/{n} | {depth / n:.2f} |")


if __name__ == "__main__":
    main()
