#!/usr/bin/env bash
# The runs that produced the shipped checkpoint (from the repository root, ../shared beside it).
#
# 1. The layout study: the recipe "chosen" of docs/recipe-study.md (the paper's loss, weight-map
#    output, entity dropout) in three architectures (pixel, patch-small, patch-fast), 10 CPU minutes
#    of training each, two seeds, RoadScene train.txt minus its validation pairs plus three M3SVD
#    clips, validated every 100 steps on the held-out pairs (splits/): docs/layout-study.md.
egmt study --base docs/study/base.json --recipes docs/study/layouts.json -o runs/layouts \
    --cpu-minutes 10 --seeds 0 1 --jobs 3 --threads 1 --table docs/layout-study.md
# 2. Its run patch-fast-s1 (the winning architecture's better seed by validation) continued to
#    20 CPU minutes (config: docs/training/egmt-roadscene-config.json). The shipped folder is
#    runs/layouts/patch-fast-s1/best, the best step by validation.
OMP_NUM_THREADS=1 egmt train -o runs/layouts/patch-fast-s1 --resume --set train.max_cpu_minutes=20
