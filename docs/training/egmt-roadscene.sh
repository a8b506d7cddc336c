#!/usr/bin/env bash
# The run that produced the shipped checkpoint (from the repository root, ../shared beside it).
egmt train --data ../shared/data/roadscene --split train.txt --annotations annotations/roadscene.jsonl \
  -o runs/egmt-roadscene --crop-size 128 --crop-stride 64 --batch-size 4 \
  --lr 5e-4 --set train.lr_schedule=cosine --set train.warmup_steps=50 \
  --max-steps 1200 --max-minutes 60 --save-every 100 --log-every 10 --seed 0
