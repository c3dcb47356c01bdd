#!/usr/bin/env bash
# Unit vocoder recipe: synthetic mini-Expresso -> units -> CodeHiFiGAN (speaker + style) -> resynthesis.
#
# Stages (run a range with --stage NAME --stop-stage NAME):
#   prepare   speechkit prepare mini-expresso     the corpus (48 kHz, 4 speakers x 5 styles)
#   units     speechkit encode                    units jsonl of the read speech, speech encoder --encoder
#   train     speechkit train vocoder             train split, dev validation (EXP/vocoder/model, .../official)
#   resynth   speechkit resynth                   one speaker/style folder resynthesised into EXP/resynth
#
# Example (CPU debug run, a few seconds of training):
#   recipes/vocoder/run.sh --encoder runs/encoder --num-units 100 --minutes 2 --preset debug
set -euo pipefail

STAGES=(prepare units train resynth)
stage=prepare
stop_stage=resynth
data=data/mini_expresso
exp=exp/vocoder
encoder=""
num_units=500
minutes=60
jobs=2
preset=""
resynth_dir=audio_48khz/read/us1/default/base
train_args=""

usage() { sed -n '2,13p' "$0"; echo "options: --stage --stop-stage --data --exp --encoder --num-units --minutes --jobs"\
  "--preset --resynth-dir --train-args"; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage=$2; shift 2;;
    --stop-stage) stop_stage=$2; shift 2;;
    --data) data=$2; shift 2;;
    --exp) exp=$2; shift 2;;
    --encoder) encoder=$2; shift 2;;
    --num-units) num_units=$2; shift 2;;
    --minutes) minutes=$2; shift 2;;
    --jobs) jobs=$2; shift 2;;
    --preset) preset=$2; shift 2;;
    --resynth-dir) resynth_dir=$2; shift 2;;
    --train-args) train_args=$2; shift 2;;
    -h|--help) usage 0;;
    *) echo "unknown option $1" >&2; usage 1;;
  esac
done

index() { local i; for i in "${!STAGES[@]}"; do [[ ${STAGES[$i]} == "$1" ]] && { echo "$i"; return; }; done
          echo "unknown stage '$1' (stages: ${STAGES[*]})" >&2; exit 1; }
first=$(index "$stage"); last=$(index "$stop_stage")
run_stage() { local i; i=$(index "$1"); [[ $i -ge $first && $i -le $last ]]; }
need_encoder() { [[ -n $encoder ]] || { echo "--encoder DIR (a speech-encoder folder) is required" >&2; exit 1; }; }
SPEECHKIT=${SPEECHKIT:-.venv/bin/speechkit}

if run_stage prepare; then
  echo "== prepare"
  $SPEECHKIT prepare mini-expresso "$data" --minutes "$minutes" --jobs "$jobs"
fi

if run_stage units; then
  echo "== units"
  need_encoder
  mkdir -p "$exp"
  $SPEECHKIT encode "$data/audio_48khz/read" -o "$exp/units.jsonl" --encoder "$encoder" --resume
fi

if run_stage train; then
  echo "== train"
  # shellcheck disable=SC2086  # train_args holds several Hydra overrides
  $SPEECHKIT train vocoder ${preset:+preset=$preset} data.units="$exp/units.jsonl" \
    data.train_list="$data/splits/train.txt" data.valid_list="$data/splits/dev.txt" data.speaker=expresso \
    data.style=expresso model.num_units="$num_units" out="$exp/vocoder" $train_args
fi

if run_stage resynth; then
  echo "== resynth"
  need_encoder
  mkdir -p "$exp/resynth"
  $SPEECHKIT resynth "$data/$resynth_dir" -o "$exp/resynth" --encoder "$encoder" --vocoder "$exp/vocoder/model"
fi
