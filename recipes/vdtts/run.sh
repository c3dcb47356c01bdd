#!/usr/bin/env bash
# VDTTS recipe: offline talking-face corpus -> VDTTS and its text-only ablation -> lip-sync benchmark -> dubbing.
#
# Stages (run a range with --stage NAME --stop-stage NAME):
#   corpus    speechkit prepare talking-face      rendered faces + MBROLA speech (train/valid/test manifests)
#   train     speechkit train vdtts               VDTTS (EXP/vdtts/model) and the text-only ablation (EXP/text_only)
#   sync      speechkit vdtts-sync                lip-sync table on the test videos (EXP/sync.md, EXP/sync.json)
#   dub       speechkit vdtts                     the first test video dubbed with its transcript (EXP/dubbed.mp4)
#
# Example (CPU debug run, seconds of training):
#   recipes/vdtts/run.sh --data data/tf_debug --exp exp/vdtts_debug --minutes 0.5 --preset debug
# checkpoints/vdtts/README.md has the exact commands of the shipped model (60-minute corpus, features file, GPU).
set -euo pipefail

STAGES=(corpus train sync dub)
stage=corpus
stop_stage=dub
data=data/talking_face
exp=exp/vdtts
minutes=20
jobs=2
preset=""
limit=""
train_args=""

usage() { sed -n '2,14p' "$0"; echo "options: --stage --stop-stage --data --exp --minutes --jobs --preset --limit"\
  "--train-args"; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage=$2; shift 2;;
    --stop-stage) stop_stage=$2; shift 2;;
    --data) data=$2; shift 2;;
    --exp) exp=$2; shift 2;;
    --minutes) minutes=$2; shift 2;;
    --jobs) jobs=$2; shift 2;;
    --preset) preset=$2; shift 2;;
    --limit) limit=$2; shift 2;;
    --train-args) train_args=$2; shift 2;;
    -h|--help) usage 0;;
    *) echo "unknown option $1" >&2; usage 1;;
  esac
done

index() { local i; for i in "${!STAGES[@]}"; do [[ ${STAGES[$i]} == "$1" ]] && { echo "$i"; return; }; done
          echo "unknown stage '$1' (stages: ${STAGES[*]})" >&2; exit 1; }
first=$(index "$stage"); last=$(index "$stop_stage")
run_stage() { local i; i=$(index "$1"); [[ $i -ge $first && $i -le $last ]]; }
SPEECHKIT=${SPEECHKIT:-.venv/bin/speechkit}

if run_stage corpus; then
  echo "== corpus"
  $SPEECHKIT prepare talking-face "$data" --minutes "$minutes" --jobs "$jobs"
fi

if run_stage train; then
  echo "== train"
  # shellcheck disable=SC2086  # train_args holds several Hydra overrides
  $SPEECHKIT train vdtts ${preset:+preset=$preset} data.root="$data" out="$exp/vdtts" $train_args
  # shellcheck disable=SC2086
  $SPEECHKIT train vdtts ${preset:+preset=$preset} data.root="$data" model.use_video=false out="$exp/text_only" \
    $train_args
fi

if run_stage sync; then
  echo "== sync"
  $SPEECHKIT vdtts-sync "$data" --split test ${limit:+--limit $limit} --model "vdtts=$exp/vdtts/model" \
    --model "text-only ablation=$exp/text_only/model" -o "$exp/sync.md"
fi

if run_stage dub; then
  echo "== dub"
  row=$(head -n 1 "$data/test.jsonl")
  video=$data/$(printf '%s' "$row" | sed -E 's/.*"video": "([^"]+)".*/\1/')
  text=$(printf '%s' "$row" | sed -E 's/.*"text": "([^"]+)".*/\1/')
  $SPEECHKIT vdtts "$video" --text "$text" -o "$exp/dubbed.mp4" --model "$exp/vdtts/model"
fi
