#!/usr/bin/env bash
# The main job: train the chapter's SimpleRNN on IMDB (20,000 train / 5,000 validation reviews,
# 2 epochs), evaluate it on the 25,000-review test split, predict two reviews, print the model summary.
# Data: ../shared/data (or $LOOPYNET_SHARED_DATA). Model folder: runs/book (or $1).
set -euo pipefail
# $1 and $LOOPYNET_SHARED_DATA are relative to where the script is called from
OUT=$(realpath -m "${1:-$(dirname "$0")/../runs/book}")
DATA_DIR=$(realpath -m "${LOOPYNET_SHARED_DATA:-$(dirname "$0")/../../shared/data}")
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# --threads 2: the numbers in README.md were measured with 2 torch threads; float sums (and so the
# trained weights) depend on the thread count, so a machine with more cores would otherwise differ.
.venv/bin/loopynet train --data "$DATA_DIR/aclImdb_v1_labeled.tar.gz" --vectors "$DATA_DIR/en_vectors_300d.bin.gz" --out "$OUT" --threads 2
.venv/bin/loopynet evaluate "$OUT" --data "$DATA_DIR/aclImdb_v1_labeled.tar.gz"
.venv/bin/loopynet predict "$OUT" \
  "I hate that the dismal weather had me down for so long, when will it break! Ugh, when does happiness return? The sun is blinding and the puffy clouds are too thin. I can't wait for the weekend." \
  "A wonderful film: brilliant acting, a moving story and a superb score. I loved every minute of it and will watch it again."
.venv/bin/loopynet summary "$OUT"
