"""The names of the files egmt writes into its folders, each defined once (docs/formats.md).

A checkpoint folder (:mod:`egmt.train.checkpoint`, :meth:`egmt.model.EGMT.save_pretrained`):
:data:`MODEL_FILE`, :data:`CONFIG_FILE`, and when the run used entities :data:`VOCABULARY_FILE`
and :data:`BANK_FILE` (also what `egmt annotate` writes beside an annotation file); with a
validation result :data:`VALIDATION_FILE` and :data:`CONTACT_SHEET_FILE`; for resuming
:data:`TRAINING_STATE_FILE`. A run folder adds :data:`CONFIG_FILE`, :data:`TRAIN_LOG_FILE` and
:data:`VALIDATION_LOG_FILE`. An `egmt export` folder: :data:`FUSION_FILE`, :data:`CLASSIFIER_FILE` and
the checkpoint's files. Plain strings and no imports: the CLI reads them without loading torch.
"""

from __future__ import annotations

MODEL_FILE = "model.safetensors"  # network weights (safetensors, egmt-model-v1 metadata)
CONFIG_FILE = "config.json"  # the full EGMTConfig (checkpoints, run folders, ONNX export folders)
TRAINING_STATE_FILE = "training_state.pt"  # optimizer, task weights, step, epoch, RNG (resuming only)
VALIDATION_FILE = "validation.json"  # the checkpoint's validation result (caption-free policy reads it)
CONTACT_SHEET_FILE = "validation.png"  # beside validation.json: IR | VIS | fused of a few validation pairs
VOCABULARY_FILE = "vocabulary.json"  # the label vocabulary
BANK_FILE = "entity_bank.safetensors"  # entity text -> feature vector
TRAIN_LOG_FILE = "log.csv"  # run folder: one row per log_every steps
VALIDATION_LOG_FILE = "validation.csv"  # run folder: one row per validation
FUSION_FILE = "fusion.onnx"  # `egmt export` folder: the fusion graph
CLASSIFIER_FILE = "classifier.onnx"  # `egmt export` folder: the caption-free classifier graph
#: The validation's floors' measures (egmt.train.validation), columns of VALIDATION_LOG_FILE after
#: the metrics and of the study tables: warm targets (pooled, worst source), the worst source's
#: seam ratio, the people's IR correlation (pooled, worst source) and the halo around them.
VALIDATION_FLOOR_COLUMNS = (
    "target_retention",
    "min_source_retention",
    "max_source_seam",
    "person_ir",
    "min_source_person_ir",
    "person_halo",
    "max_source_person_halo",
)

ENTITY_TABLE_FILE = "entities.csv"  # `egmt fuse` on folders: the entities each pair was fused with
PER_IMAGE_FILE = "per_image.csv"  # `egmt evaluate`: one row per method and image
SUMMARY_CSV_FILE = "summary.csv"  # `egmt evaluate`: one row per method, mean of each metric
SUMMARY_MD_FILE = "summary.md"  # the same as a Markdown table
