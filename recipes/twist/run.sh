#!/usr/bin/env bash
# TWIST in miniature: a small text LM, then unit LMs warm-started from it (TWIST) and cold-started, trained on
# synthetic story speech, compared by validation loss and by a synthetic spoken StoryCloze (sSC / tSC).
#
#   recipes/twist/run.sh --preset mini                    # the README experiment (CPU, tens of minutes)
#   recipes/twist/run.sh --preset debug --exp exp/twist_debug --data data/twist_debug --text-docs 200 \
#       --train-stories 16 --pairs 4                      # a CI smoke run of every stage (about a minute)
#   recipes/twist/run.sh --stage train --stop-stage eval --encoder exp/hubert/final/encoder --num-units 100
#   recipes/twist/run.sh --stage speech --text-lm /models/opt-125m --voices us2   # any HF text LM, one voice
#
# Stages (names or numbers; run a range with --stage / --stop-stage):
#   0 text        text corpus (train stories + sentences)      speechkit prepare text-corpus
#   1 textlm      small Llama text LM + BPE                     speechkit train textlm
#   2 speech      speech of train stories (--voices)           speechkit prepare story-speech
#   3 kmeans      MFCC k-means (skipped with --encoder)         speechkit train kmeans features=mfcc
#   4 units       encode the story speech                       speechkit encode
#   5 sequences   dedup + train/valid split                     speechkit sequences
#   6 train       unit LMs, one per --inits (warm, cold)        speechkit train ulm model.init=...
#   7 storycloze  synthetic sSC / tSC from test stories         speechkit prepare storycloze
#   8 sc_units    encode the sSC / tSC folders                  speechkit encode
#   9 eval        pairwise accuracy of each unit LM             speechkit eval storycloze

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(text textlm speech kmeans units sequences train storycloze sc_units eval)
OPTIONS=(preset data exp encoder num_units text_docs train_stories pairs inits text_lm voices ulm_args textlm_args)
preset=mini
data=data/twist
exp=exp/twist
encoder=""
num_units=100
text_docs=20000
train_stories=1000
pairs=200
inits="warm cold"
text_lm=""
voices="us1 us2 us3 en1"
ulm_args=""
textlm_args=""
parse_options "$@"

# units come from a speech-encoder folder (--encoder) or from MFCC k-means trained in stage kmeans
if [[ -n $encoder ]]; then units_args=(--encoder "$encoder"); else
  units_args=(--mfcc --kmeans "$exp/kmeans/kmeans.safetensors"); fi
km_preset=$([[ $preset == debug ]] && echo "preset=debug" || echo "")
text_lm=${text_lm:-$exp/textlm/model}  # the text LM warm starts read (and cold starts copy the shape of)

if run_stage text; then
  $SK prepare text-corpus "$data/text" --stories $((text_docs / 2)) --sentences $((text_docs / 2))
fi
if run_stage textlm; then
  # shellcheck disable=SC2086  # textlm_args holds several Hydra overrides
  $SK train textlm preset="$preset" data.train="$data/text/train.txt" data.valid="$data/text/valid.txt" \
    out="$exp/textlm" $textlm_args
fi
if run_stage speech; then
  # shellcheck disable=SC2086  # voices is a list
  $SK prepare story-speech "$data/story_speech" --stories "$train_stories" --voices $voices
fi
if run_stage kmeans && [[ -z $encoder ]]; then
  # shellcheck disable=SC2086  # km_preset is one optional override
  $SK train kmeans $km_preset data="$data/story_speech/audio" features=mfcc k="$num_units" out="$exp/kmeans"
fi
if run_stage units; then
  $SK encode "$data/story_speech/audio" -o "$exp/units/speech.jsonl" "${units_args[@]}" --resume
fi
if run_stage sequences; then
  $SK sequences "$exp/units/speech.jsonl" -o "$exp/units" --valid-fraction 0.05
fi
if run_stage train; then
  for init in $inits; do
    # shellcheck disable=SC2086
    $SK train ulm preset="$preset" model.init="$init" model.text_lm="$text_lm" \
      data.train="$exp/units/train.jsonl" data.valid="$exp/units/valid.jsonl" data.num_units="$num_units" \
      out="$exp/ulm_$init" $ulm_args
  done
fi
if run_stage storycloze; then
  $SK prepare storycloze "$data/storycloze" --pairs "$pairs"
fi
if run_stage sc_units; then
  for bench in sSC tSC; do
    $SK encode "$data/storycloze/$bench" -o "$exp/units/$bench.jsonl" "${units_args[@]}" --resume
  done
fi
if run_stage eval; then
  for init in $inits; do
    $SK eval storycloze "$data/storycloze/sSC" "$data/storycloze/tSC" --ulm "$exp/ulm_$init/model" \
      --units "$exp/units/sSC.jsonl" "$exp/units/tSC.jsonl" -o "$exp/eval_$init"
  done
fi
