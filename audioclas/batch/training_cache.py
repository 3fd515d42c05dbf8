"""Feeding an ``embed`` job's output to training.

Training keys its embedding cache by (content sha256, backbone sha256, window settings); an embed job records all
three (each clip's sha256, and the rest in ``job.json``). ``fill_training_cache`` copies the window embeddings of
every clip into that cache, so that training on the same audio files with the same window settings decodes nothing:
embed a corpus on a cluster, copy the output folder, fill the cache, train.
"""

from __future__ import annotations

from pathlib import Path

from audioclas.batch.read import read_embeddings, read_job
from audioclas.errors import AudioclasError
from audioclas.training.embedding_cache import ClipWindows, EmbeddingCache
from audioclas.windows import WindowSettings


def fill_training_cache(out_dir: str | Path, cache_root: Path | None = None) -> int:
    """Put the window embeddings of every clip of the embed job in ``out_dir`` into the training cache.

    Returns the number of entries written (clips already cached are left alone). The job must have run with
    ``--timeline``: training uses the embeddings of every window, not only their mean.
    """
    job = read_job(out_dir)
    if job["task"] != "embed" or not job["timeline"]:
        raise AudioclasError(f"{out_dir}: training needs window embeddings: run 'audioclas embed ... --timeline'")
    cache = EmbeddingCache(job["backbone_sha256"], WindowSettings.from_dict(job), cache_root)
    written = 0
    for clip in read_embeddings(out_dir):
        if clip.sha256 and clip.windows is not None and clip.starts is not None and clip.sha256 not in cache:
            cache.put(clip.sha256, ClipWindows(clip.windows, clip.starts, clip.duration))
            written += 1
    return written
