#!/usr/bin/env bash
# VDTTS recipe: offline talking-face corpus -> VDTTS and its text-only ablation -> lip-sync benchmark -> dubbing.
#
# Stages (names or numbers; run a range with --stage / --stop-stage):
#   0 corpus    speechkit prepare talking-face      rendered faces + MBROLA speech (train/valid/test manifests)
#   1 train     speechkit train vdtts               VDTTS (EXP/vdtts/model) and the text-only ablation (EXP/text_only)
#   2 sync      speechkit vdtts-sync                lip-sync table on the test videos (EXP/sync.md, EXP/sync.json)
#   3 dub       speechkit vdtts                     the first test video dubbed with its transcript (EXP/dubbed.mp4)
#
# Example (CPU debug run, seconds of training):
#   recipes/vdtts/run.sh --data data/tf_debug --exp exp/vdtts_debug --minutes 0.5 --preset debug
# checkpoints/vdtts/README.md has the exact commands of the shipped model (60-minute corpus, features file, 70 CPU-minutes).

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(corpus train sync dub)
OPTIONS=(data exp minutes jobs preset limit train_args)
data=data/talking_face
exp=exp/vdtts
minutes=20
jobs=2
preset=""
limit=""
train_args=""
parse_options "$@"

if run_stage corpus; then
  $SK prepare talking-face "$data" --minutes "$minutes" --jobs "$jobs"
fi

if run_stage train; then
  # shellcheck disable=SC2086  # train_args holds several Hydra overrides
  $SK train vdtts ${preset:+preset=$preset} data.root="$data" out="$exp/vdtts" $train_args
  # shellcheck disable=SC2086
  $SK train vdtts ${preset:+preset=$preset} data.root="$data" model.use_video=false out="$exp/text_only" \
    $train_args
fi

if run_stage sync; then
  $SK vdtts-sync "$data" --split test ${limit:+--limit $limit} --model "vdtts=$exp/vdtts/model" \
    --model "text-only ablation=$exp/text_only/model" -o "$exp/sync.md"
fi

if run_stage dub; then
  row=$(head -n 1 "$data/test.jsonl")
  video=$data/$(printf '%s' "$row" | sed -E 's/.*"video": "([^"]+)".*/\1/')
  text=$(printf '%s' "$row" | sed -E 's/.*"text": "([^"]+)".*/\1/')
  $SK vdtts "$video" --text "$text" -o "$exp/dubbed.mp4" --model "$exp/vdtts/model"
fi
