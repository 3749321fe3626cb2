#!/usr/bin/env bash
# Run every reference submission on every task whose data is here, then regenerate leaderboards/.
#
#   scripts/reference.sh            GPU settings: each submission.toml as committed (one H100-class card)
#   scripts/reference.sh --cpu      the smaller settings of the committed CPU reference results
#   scripts/reference.sh --quick    1-2 epochs, narrow models: a smoke test of the whole suite on a CPU
#
# Environment: MEDBENCH_DATA (raw data), MEDBENCH_HOME (cache), OUT (default leaderboards, or
# runs/reference-quick with --quick), RESULTS (default $OUT/results), MEDBENCH (default: medbench).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-gpu}
# A quick smoke run must not touch the published records: it writes under runs/ by default.
if [ "$MODE" = --quick ]; then DEFAULT_OUT=runs/reference-quick; else DEFAULT_OUT=leaderboards; fi
OUT=${OUT:-$DEFAULT_OUT}
RESULTS=${RESULTS:-$OUT/results}
MEDBENCH=${MEDBENCH:-medbench}
case "$MODE" in
  gpu|--gpu) MODE=gpu; DEVICE=cuda ;;
  --cpu) MODE=cpu; DEVICE=cpu ;;
  --quick) MODE=quick; DEVICE=cpu ;;
  *) echo "usage: $0 [--cpu|--quick]" >&2; exit 2 ;;
esac

# Tasks whose data is available here (prepared, available or generated), from medbench itself.
mapfile -t AVAILABLE < <($MEDBENCH tasks --format json | python3 -c \
  'import json,sys; [print(t["name"]) for t in json.load(sys.stdin) if t["data"] != "absent"]')
has() { local t; for t in "${AVAILABLE[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

status=0
# run SUBMISSION TASK [--set KEY=VALUE ...]: one (submission, task) with mode-specific overrides.
run() {
  local sub=$1 task=$2; shift 2
  has "$task" || { echo "skip $sub/$task: no data"; return; }
  local extra=()
  case "$MODE" in
    gpu) ;;
    cpu) extra=("$@") ;;
    quick) extra=(--set epochs=1) ;;
  esac
  $MEDBENCH run "submissions/$sub" --task "$task" --device "$DEVICE" --results-dir "$RESULTS" --quiet "${extra[@]}" || status=1
}

for task in toy-anatomy toy-lesions jsrt-anatomy jsrt-nodule isbi2012-membranes messidor2-referable \
            messidor2-grading retinamnist dsb2018-nuclei tb-cxr ctc-u373 ctc-hela; do
  run dummy "$task"
done
for task in toy-lesions jsrt-nodule messidor2-referable messidor2-grading retinamnist tb-cxr; do
  run lbp-svm "$task"
done

run unet toy-anatomy
run unet jsrt-anatomy --set base_width=16 --set epochs=60
run unet isbi2012-membranes --set base_width=16 --set epochs=400
run unet dsb2018-nuclei --set base_width=16 --set epochs=40
run cnn toy-lesions
run cnn retinamnist --set epochs=30
run cnn jsrt-nodule --set epochs=30
run cnn messidor2-referable --set epochs=30 --set image_size=224
run cnn messidor2-grading --set epochs=30 --set image_size=224
run cnn tb-cxr --set epochs=30

$MEDBENCH leaderboard --results "$RESULTS" --out "$OUT" || status=1
exit $status
