"""Saved custom classifiers: one folder per model under ``settings.home_dir()/models/NAME/``.

A model folder holds:

| file | what |
|---|---|
| ``model.json`` | classes, task (single/multi-label), head spec, window settings, backbone identity and sha256 (and the pretrained network's), per-class thresholds (multi-label), dataset summary, training summary, headline metrics; after ``--finetune``, the frozen head's and the fine-tuned network's metrics (``metrics.frozen``, ``metrics.finetuned``) and which was kept and why (``finetune``) |
| ``README.md`` | the model card (Markdown, built from ``model.json`` and ``config.json`` by ``card``): task, classes with examples per split, data, training options, metrics, backbone and licence, intended use and limits; ``read_card`` builds it on the fly for a folder without one |
| ``head.safetensors`` | the head's weights (including the input standardisation) |
| ``backbone.safetensors`` | only after ``--finetune``: the fine-tuned EfficientAT weights |
| ``classes.txt``, ``info.txt`` | class names (line N is class N) and the dataset's ``info.txt`` |
| ``config.json`` | the full training configuration |
| ``metrics.json``, ``history.json`` | validation/test metrics, and one row per epoch |
| ``confusion_matrix_<split>.png/.json`` | single-label only |

A model is written into a temporary folder beside its final place and renamed into it (``os.rename``), so a
crash never leaves a half model under its name, and a model saved meanwhile by another run is never replaced
unless overwriting was asked for.

A model is named (a ``str``: only ever a folder under ``home_dir()/models``, whatever the current directory
holds) or given as a folder (a ``Path``, which only the command line makes from what its user typed: see
``model_ref``). The service and the DEEPaaS adapter only ever pass names.

Using a model (the contract ``audioclas predict --model NAME`` relies on)::

    model = load_model("birds")          # a name under home_dir()/models; load_model(Path("dir")) for a folder
    model.classes                        # list[str]
    model.multilabel                     # bool: sigmoid scores and per-class ``model.thresholds``, else softmax
    model.window, model.hop, model.pad   # window settings the embeddings must be computed with
    model.backbone_sha256                # the network whose embeddings the head reads: the pretrained one
                                         # (``Tagger.model_id``), or the fine-tuned weights' ``engine.checkpoint.state_sha256``
    model.pretrained_sha256              # the pretrained network it derives from (the same, unless fine-tuned)
    window_scores, clip_scores = model.classify(windows)   # windows: (n, 384) float32 embeddings of one clip
    # -> (n, C) and (C,) scores in [0, 1]

For a fine-tuned model (``model.finetuned``) the embeddings must come from ``model.load_backbone()`` rather
than the pretrained network; it checks the weights against ``backbone_sha256``.

Modules: ``names`` (where models live, the name rule, lookups), ``folder`` (one model folder: the format, read
and written), ``card`` (the model card), ``collection`` (saving into the models folder atomically, listing, deleting).
"""

from audioclas.training.store.card import CARD_FILE, model_card, read_card
from audioclas.training.store.collection import ModelSummary, delete_model, headline_text, list_models, save_model
from audioclas.training.store.folder import (
    BACKBONE_NAME,
    MODEL_FORMAT,
    MODEL_VERSION,
    SavedModel,
    load_model,
    model_info,
    read_info,
    write_json,
    write_model_folder,
)
from audioclas.training.store.names import (
    NAME_PATTERN,
    ModelError,
    ModelExists,
    ModelNotFound,
    check_name,
    default_name,
    model_folder,
    model_path,
    model_ref,
    models_dir,
    resolve_model,
)

__all__ = [
    "BACKBONE_NAME",
    "CARD_FILE",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "NAME_PATTERN",
    "ModelError",
    "ModelExists",
    "ModelNotFound",
    "ModelSummary",
    "SavedModel",
    "check_name",
    "default_name",
    "delete_model",
    "headline_text",
    "list_models",
    "load_model",
    "model_card",
    "model_folder",
    "model_info",
    "model_path",
    "model_ref",
    "models_dir",
    "read_card",
    "read_info",
    "resolve_model",
    "save_model",
    "write_json",
    "write_model_folder",
]
