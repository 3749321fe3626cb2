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
# run SUBMISSION TASK [--gpu "K=V ..."] [--cpu "K=V ..."] [--variant V --all "K=V ..."]: one
# (submission, task) with the [train] overrides of this mode (none: the submission.toml as
# committed); a variant is its own entry (SUBMISSION+V) with the --all overrides in every mode.
run() {
  local sub=$1 task=$2 gpu="" cpu="" all="" variant=""; shift 2
  while [ $# -gt 0 ]; do
    case "$1" in --gpu) gpu=$2 ;; --cpu) cpu=$2 ;; --all) all=$2 ;; --variant) variant=$2 ;; esac
    shift 2
  done
  has "$task" || { echo "skip $sub/$task: no data"; return 0; }
  local sets="" extra=() kv device=$DEVICE
  case "$MODE" in
    gpu) sets=$gpu ;;
    cpu) sets=$cpu ;;
    quick) sets="epochs=1" ;;
  esac
  for kv in $sets $all; do extra+=(--set "$kv"); done
  [ -n "$variant" ] && extra+=(--variant "$variant")
  case "$sub" in dummy|lbp-svm|deep-features) device=cpu ;; esac  # always on the CPU
  $MEDBENCH run "submissions/$sub" --task "$task" --device "$device" --results-dir "$RESULTS" \
    --quiet "${extra[@]}" || status=1
}

# The tasks a submission enters, from its submission.toml (runs of tasks without data are skipped).
tasks_of() {
  python3 -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["submission"]["tasks"])' \
    "submissions/$1/submission.toml"
}

# The CPU-only entries (the floor and the Bar et al. 2015 baseline), on every task they enter.
cpu_only() {
  local task
  for task in $(tasks_of dummy); do run dummy "$task"; done
  for task in $(tasks_of lbp-svm); do run lbp-svm "$task" --gpu "n_jobs=4"; done
  for task in $(tasks_of deep-features); do run deep-features "$task"; done
  return $status
}

# The [train] overrides of a torch entry on a task, per mode, into GPU_SETS and CPU_SETS (empty:
# the submission.toml as is). GPU: longer schedules than the defaults where an epoch is a fraction
# of a second, and a checkpoint every few epochs (writing one costs more than an epoch).
overrides() {
  GPU_SETS="" CPU_SETS=""
  case "$1/$2" in
    unet/jsrt-anatomy) GPU_SETS="epochs=150 checkpoint_every=25" CPU_SETS="base_width=16 epochs=60" ;;
    unet/isbi2012-membranes) GPU_SETS="epochs=600 checkpoint_every=50" CPU_SETS="base_width=16 epochs=400" ;;
    unet/dsb2018-nuclei) GPU_SETS="epochs=100 val_every=5 checkpoint_every=10" CPU_SETS="base_width=16 epochs=80 val_every=2" ;;
    # cnn's submission.toml is sized for a CPU; a GPU fine-tunes every stage, longer.
    cnn/messidor2-*) GPU_SETS="image_size=384 trainable_stages=7 epochs=30 checkpoint_every=10" ;;
    cnn/toy-lesions) ;;
    cnn/*) GPU_SETS="trainable_stages=7 epochs=30 checkpoint_every=10" ;;
  esac
}

# The torch entries, on every task they enter.
torch_entries() {
  local sub task
  for sub in unet cnn; do
    for task in $(tasks_of "$sub"); do
      overrides "$sub" "$task"
      run "$sub" "$task" --gpu "$GPU_SETS" --cpu "$CPU_SETS"
    done
  done
  return $status
}

# The transfer-learning table of each binary task (Lakhani & Sundaram 2017): the cnn entry
# (EfficientNet-Lite0 fine-tuned from ImageNet) with their augmentation, and ResNet-18 trained
# from scratch with and without it. On the CPU the two larger training sets train from scratch
# for fewer epochs (PneumoniaMNIST 4,708 images: 5; Messidor-2 1,046 at 224 px: 6) and without
# the Lakhani-augmented scratch run: the committed CPU records did not fit more.
cnn_variants() {
  local task scratch cpu_epochs
  scratch="backbone=resnet18 pretrained=false"
  for task in jsrt-nodule messidor2-referable pneumoniamnist breastmnist tb-cxr; do
    case "$task" in
      pneumoniamnist) cpu_epochs=5 ;;
      messidor2-referable) cpu_epochs=6 ;;
      *) cpu_epochs=30 ;;
    esac
    run cnn "$task" --variant lakhani --all "aug=lakhani"
    run cnn "$task" --variant resnet18 --gpu "epochs=30" --cpu "epochs=$cpu_epochs" \
      --all "$scratch aug=base"
    if [ "$MODE" != cpu ] || [ "$cpu_epochs" -eq 30 ]; then
      run cnn "$task" --variant resnet18-lakhani --gpu "epochs=30" --cpu "epochs=$cpu_epochs" \
        --all "$scratch aug=lakhani"
    fi
  done
  return $status
}

# The Novikov table on jsrt-anatomy (architecture x loss, submissions/novikov: every variant
# with bce+dice and with the Dice loss, the U-Net with every loss), the FCN and DeepLabv3+
# entries, and the sliding-window baseline of ISBI 2012 (submissions/ciresan). --cpu: each submission.toml (base width 8, 25 epochs of batches of 4;
# InvertedNet at base width 1, the U-Net's FLOPs). The GPU settings (not yet run on a GPU): the
# unet entry's 150 epochs at base width 32; InvertedNet at 16 (256 maps at full resolution).
segmentation_table() {
  local gpu="base_width=32 epochs=150 batch_size=8 checkpoint_every=25" loss variant task sub
  run novikov jsrt-anatomy --gpu "$gpu"
  for loss in dice ce weighted-ce; do
    run novikov jsrt-anatomy --variant "$loss" --gpu "$gpu" --all "loss=$loss"
  done
  for variant in all-dropout all-conv; do
    run novikov jsrt-anatomy --variant "$variant" --gpu "$gpu" --all "variant=$variant"
    run novikov jsrt-anatomy --variant "$variant-dice" --gpu "$gpu" \
      --all "variant=$variant loss=dice"
  done
  local inverted="base_width=16 epochs=150 batch_size=8 checkpoint_every=25"
  run novikov jsrt-anatomy --variant inverted --all "variant=inverted" \
    --gpu "$inverted" --cpu "base_width=1"
  run novikov jsrt-anatomy --variant inverted-dice --all "variant=inverted loss=dice" \
    --gpu "$inverted" --cpu "base_width=1"
  for sub in novikov fcn deeplabv3plus ciresan; do
    for task in $(tasks_of "$sub"); do
      case "$sub/$task" in novikov/jsrt-anatomy) continue ;; esac
      [ "$MODE" = cpu ] && [ "$task" = dsb2018-nuclei ] && continue  # an hour of CPU each
      run "$sub" "$task" --gpu "base_width=32 epochs=150 batch_size=8"
    done
  done
  return $status
}

started=$SECONDS
if [ "$MODE" = gpu ]; then
  # The GPU trains while the CPU-only entries use the cores beside its data loaders.
  cpu_only &
  cpu_pid=$!
  torch_entries || status=1
  cnn_variants || status=1
  segmentation_table || status=1
  wait "$cpu_pid" || status=1
else
  cpu_only || status=1
  torch_entries || status=1
  cnn_variants || status=1
  segmentation_table || status=1
fi
echo "reference suite ($MODE): $((SECONDS - started)) s of runs"

$MEDBENCH leaderboard --results "$RESULTS" --out "$OUT" || status=1
exit $status
