#!/bin/bash
# One measured tagger run for benchmarks/tagger_recipes.py: trains with `loopynet tag train` under
# /usr/bin/time -v on one thread, then evaluates the validation split (and the test split with --test).
#
#   bash benchmarks/tagger_run.sh NAME [--test] [tag train flags...]     # -> runs/tagger/NAME/
#   bash benchmarks/tagger_run.sh conll50 --vectors ../shared/data/glove_6B_50d_conll.bin.gz
#
# The run folder holds meta.txt (UTC start/end, load average at the start, the flags), time.txt (time -v),
# train.log, model/, valid.json and test.json. Flags after NAME go to `tag train` unchanged; --data and
# --threads 1 are set here.
set -euo pipefail
DATA=${LOOPYNET_SHARED_DATA:-../shared/data}
name=$1; shift
test=0
if [ "${1:-}" = "--test" ]; then test=1; shift; fi
cd "$(dirname "$0")/.."
out=runs/tagger/$name
mkdir -p "$out"
{ echo "start $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; echo "flags: $*"; } > "$out/meta.txt"
/usr/bin/time -v .venv/bin/loopynet tag train --data "$DATA/conll2003" --out "$out/model" --threads 1 "$@" \
    > "$out/train.log" 2> "$out/time.txt"
echo "end $(date -u +%FT%T)" >> "$out/meta.txt"
.venv/bin/loopynet tag evaluate "$out/model" --split valid --json --threads 1 > "$out/valid.json"
if [ "$test" = 1 ]; then .venv/bin/loopynet tag evaluate "$out/model" --split test --json --threads 1 > "$out/test.json"; fi
