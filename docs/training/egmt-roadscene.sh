#!/usr/bin/env bash
# The runs that produced the shipped checkpoint (from the repository root, ../shared beside it).
#
# Earlier studies fixed the recipe (docs/recipe-study.md: weight-map output, entity dropout), the
# token layout (docs/layout-study.md: patch tokens, patch-fast's size) and the intensity weight
# (docs/intensity-study.md: alpha_int = 20). The checkpoint shipped before this one drew 16x16 patch
# mosaics that no metric saw; the seam study compares, at an equal budget and under a selection
# rule that neither copying a source nor a mosaic can win (docs/design.md, "validation rule"):
#   shipped            the previous recipe (each token's update returned to its own 16x16 patch,
#                      one channel-attention map per window);
#   smooth             updates interpolated between patch centres, one channel-attention map per
#                      image: no patch border exists in the output;
#   smooth-basedetail  smooth, and eq. 12's target split into a base (the brighter source's) and a
#                      detail layer (the stronger source's);
#   smooth-meanbase    the same with the mean of the two bases.
# 10 CPU minutes of training each, two seeds, RoadScene train.txt minus its validation pairs plus
# three M3SVD clips, validated every 100 steps on the held-out pairs (splits/): docs/seam-study.md.
# The recipes were run in two batches (--only), the table written again with --no-train.
egmt study --base docs/study/base.json --recipes docs/study/seams.json -o runs/seams \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --table docs/seam-study.md --title "Seam study"
# 2. Its run smooth-s1 (the winning recipe's better seed at the budget) continued to 20 CPU minutes
#    (config: docs/training/egmt-roadscene-config.json). The shipped folder is
#    runs/seams/smooth-s1/best: the highest score among the validations above both floors.
OMP_NUM_THREADS=2 egmt train -o runs/seams/smooth-s1 --resume --set train.max_cpu_minutes=20
