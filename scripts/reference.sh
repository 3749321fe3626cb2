#!/usr/bin/env bash
# Run every reference submission on every task whose data is here, then regenerate leaderboards/.
#
#   scripts/reference.sh            GPU settings: the submission.toml files plus the --gpu overrides
#                                   below (one H100-class card)
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
# run SUBMISSION TASK [--gpu "K=V ..."] [--cpu "K=V ..."]: one (submission, task) with the
# [train] overrides of this mode (none: the submission.toml as committed).
run() {
  local sub=$1 task=$2 gpu="" cpu=""; shift 2
  while [ $# -gt 0 ]; do
    case "$1" in --gpu) gpu=$2 ;; --cpu) cpu=$2 ;; esac
    shift 2
  done
  has "$task" || { echo "skip $sub/$task: no data"; return 0; }
  local sets="" extra=() kv device=$DEVICE
  case "$MODE" in
    gpu) sets=$gpu ;;
    cpu) sets=$cpu ;;
    quick) sets="epochs=1" ;;
  esac
  for kv in $sets; do extra+=(--set "$kv"); done
  case "$sub" in dummy|lbp-svm) device=cpu ;; esac  # no torch model: always on the CPU
  $MEDBENCH run "submissions/$sub" --task "$task" --device "$device" --results-dir "$RESULTS" \
    --quiet "${extra[@]}" || status=1
}

# The CPU-only entries (the floor and the Bar et al. 2015 baseline).
cpu_only() {
  local task
  for task in toy-anatomy toy-lesions jsrt-anatomy jsrt-nodule isbi2012-membranes \
              messidor2-referable messidor2-grading retinamnist dsb2018-nuclei tb-cxr ctc-u373 ctc-hela; do
    run dummy "$task"
  done
  for task in toy-lesions jsrt-nodule messidor2-referable messidor2-grading retinamnist tb-cxr; do
    run lbp-svm "$task" --gpu "n_jobs=4"
  done
  return $status
}

# The torch entries. GPU: longer schedules than the submission.toml defaults where an epoch is a
# fraction of a second, and a checkpoint every few epochs (writing one costs more than an epoch).
torch_entries() {
  run unet toy-anatomy
  run unet jsrt-anatomy --gpu "epochs=150 checkpoint_every=25" --cpu "base_width=16 epochs=60"
  run unet isbi2012-membranes --gpu "epochs=600 checkpoint_every=50" --cpu "base_width=16 epochs=400"
  run unet dsb2018-nuclei --gpu "epochs=100 val_every=5 checkpoint_every=10" --cpu "base_width=16 epochs=80 val_every=2"
  run cnn toy-lesions
  run cnn retinamnist --gpu "checkpoint_every=10" --cpu "epochs=30"
  run cnn jsrt-nodule --gpu "checkpoint_every=10" --cpu "epochs=30"
  run cnn messidor2-referable --gpu "checkpoint_every=10" --cpu "epochs=30 image_size=224"
  run cnn messidor2-grading --gpu "checkpoint_every=10" --cpu "epochs=30 image_size=224"
  run cnn tb-cxr --gpu "checkpoint_every=10" --cpu "epochs=30"
  return $status
}

started=$SECONDS
if [ "$MODE" = gpu ]; then
  # The GPU trains while the CPU-only entries use the cores beside its data loaders.
  cpu_only &
  cpu_pid=$!
  torch_entries || status=1
  wait "$cpu_pid" || status=1
else
  cpu_only || status=1
  torch_entries || status=1
fi
echo "reference suite ($MODE): $((SECONDS - started)) s of runs"

$MEDBENCH leaderboard --results "$RESULTS" --out "$OUT" || status=1
exit $status
