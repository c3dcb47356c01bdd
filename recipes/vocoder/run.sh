#!/usr/bin/env bash
# Unit vocoder recipe: synthetic mini-Expresso -> units -> CodeHiFiGAN (speaker + style) -> resynthesis.
#
# Stages (names or numbers; run a range with --stage / --stop-stage):
#   0 prepare   speechkit prepare mini-expresso     the corpus (48 kHz, 4 speakers x 5 styles)
#   1 units     speechkit encode                    units jsonl of the read speech, speech encoder --encoder
#   2 train     speechkit train vocoder             train split, dev validation (EXP/vocoder/model, .../official)
#   3 resynth   speechkit resynth                   one speaker/style folder resynthesised into EXP/resynth
#
# Example (CPU debug run, a few seconds of training):
#   recipes/vocoder/run.sh --encoder runs/encoder --num-units 100 --minutes 2 --preset debug

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(prepare units train resynth)
OPTIONS=(data exp encoder num_units minutes jobs preset resynth_dir train_args)
data=data/mini_expresso
exp=exp/vocoder
encoder=""
num_units=500
minutes=60
jobs=2
preset=""
resynth_dir=audio_48khz/read/us1/default/base
train_args=""
parse_options "$@"
need_encoder() { [[ -n $encoder ]] || usage_error "--encoder DIR (a speech-encoder folder) is required"; }

if run_stage prepare; then
  $SK prepare mini-expresso "$data" --minutes "$minutes" --jobs "$jobs"
fi

if run_stage units; then
  need_encoder
  mkdir -p "$exp"
  $SK encode "$data/audio_48khz/read" -o "$exp/units.jsonl" --encoder "$encoder" --resume
fi

if run_stage train; then
  # shellcheck disable=SC2086  # train_args holds several Hydra overrides
  $SK train vocoder ${preset:+preset=$preset} data.units="$exp/units.jsonl" \
    data.train_list="$data/splits/train.txt" data.valid_list="$data/splits/dev.txt" data.speaker=expresso \
    data.style=expresso model.num_units="$num_units" out="$exp/vocoder" $train_args
fi

if run_stage resynth; then
  need_encoder
  mkdir -p "$exp/resynth"
  $SK resynth "$data/$resynth_dir" -o "$exp/resynth" --encoder "$encoder" --vocoder "$exp/vocoder/model"
fi
