"""Batch tagging and embedding at scale: resumable jobs writing Parquet, run locally or on a Ray cluster.

    from audioclas.batch import JobSpec, run_job, read_table
    summary = run_job(["recordings/"], "out/", JobSpec("predict", timeline=True), engine="ray")
    clips = read_table("out/", "clips")   # a pyarrow Table

The local engine needs only the base install; the Ray engine needs ``pip install 'audioclas[ray]'``.
Modules: ``tasks`` (listing inputs, shards), ``job`` (spec, output folder, commit markers), ``tables`` (Parquet
schemas), ``worker`` (one shard: decode, network, write), ``engines`` (local and Ray), ``read`` (reading results),
``training_cache`` (an embed job's output into the training cache), ``models`` (a custom model in a job: ``--model``),
``reuse`` (resuming by content, ``--retry-failed``).
"""

from audioclas.batch.engines import Summary, run_job
from audioclas.batch.job import JobSpec
from audioclas.batch.read import EmbeddedClip, read_embeddings, read_job, read_table

__all__ = ["EmbeddedClip", "JobSpec", "Summary", "read_embeddings", "read_job", "read_table", "run_job"]
