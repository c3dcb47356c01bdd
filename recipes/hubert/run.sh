#!/usr/bin/env bash
# HuBERT pretraining at small scale: fairseq's two-iteration recipe, shrunk, on the synthetic mini-Expresso.
#
#   recipes/hubert/run.sh                      # the "small" model on 60 minutes (tens of minutes on 2 CPU cores)
#   recipes/hubert/run.sh --preset debug       # tiny: a CI smoke run of every stage (about a minute)
#   recipes/hubert/run.sh --stage pretrain_it2 --stop-stage final_units
#
# Stages (names or numbers; run a range with --stage / --stop-stage):
#   0 corpus        synthesise the mini-Expresso                 speechkit prepare mini-expresso
#   1 manifests     train / valid tsv from the Expresso splits   speechkit prepare manifest
#   2 mfcc_kmeans   k-means on MFCC features                     speechkit train kmeans features=mfcc
#   3 mfcc_labels   frame labels for iteration 1                 speechkit encode --mfcc --no-dedup
#   4 pretrain_it1  masked prediction of the MFCC labels         speechkit train hubert
#   5 hubert_kmeans k-means on iteration-1 layer features        speechkit train kmeans features=hubert
#   6 hubert_labels frame labels for iteration 2                 speechkit encode --no-dedup
#   7 pretrain_it2  masked prediction of the HuBERT labels       speechkit train hubert
#   8 final_kmeans  k-means on iteration-2 features -> encoder   speechkit train kmeans features=hubert
#   9 final_units   deduplicated units of the corpus             speechkit encode

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(corpus manifests mfcc_kmeans mfcc_labels pretrain_it1 hubert_kmeans hubert_labels pretrain_it2 final_kmeans
        final_units)
OPTIONS=(preset data exp minutes jobs k1 k2 k_final layer)
preset=small
data=data/mini_expresso
exp=exp/hubert
minutes=60
jobs=2
k1=50
k2=100
k_final=100
layer=3
parse_options "$@"
TRAIN=${SPEECHKIT_TRAIN:-$SK}   # the HuBERT trainer (e.g. torchrun ... -m speechkit.cli.main for DDP)
km_preset=$([[ $preset == debug ]] && echo "preset=debug" || echo "")

if run_stage corpus; then
  $SK prepare mini-expresso "$data" --minutes "$minutes" --jobs "$jobs"
fi
if run_stage manifests; then
  for split in train dev; do
    $SK prepare manifest "$data/audio_48khz/read" -o "$exp/$split.tsv" --include "$data/splits/$split.txt"
  done
fi
if run_stage mfcc_kmeans; then
  # shellcheck disable=SC2086  # km_preset is one optional override
  $SK train kmeans $km_preset data="$exp/train.tsv" features=mfcc k="$k1" out="$exp/it1/km"
fi
if run_stage mfcc_labels; then
  for split in train dev; do
    $SK encode "$exp/$split.tsv" --mfcc --kmeans "$exp/it1/km/kmeans.safetensors" --no-dedup \
      -o "$exp/it1/$split.labels.jsonl" --resume
  done
fi
if run_stage pretrain_it1; then
  $TRAIN train hubert preset="$preset" data.train="$exp/train.tsv" data.train_labels="$exp/it1/train.labels.jsonl" \
    data.valid="$exp/dev.tsv" data.valid_labels="$exp/it1/dev.labels.jsonl" pretrain.num_classes="$k1" \
    out="$exp/it1"
fi
if run_stage hubert_kmeans; then
  # shellcheck disable=SC2086  # km_preset is one optional override
  $SK train kmeans $km_preset data="$exp/train.tsv" features=hubert hubert="$exp/it1/model" layer="$layer" \
    k="$k2" out="$exp/it2/km"
fi
if run_stage hubert_labels; then
  for split in train dev; do
    $SK encode "$exp/$split.tsv" --encoder "$exp/it2/km/encoder" --no-dedup -o "$exp/it2/$split.labels.jsonl" --resume
  done
fi
if run_stage pretrain_it2; then
  $TRAIN train hubert preset="$preset" data.train="$exp/train.tsv" data.train_labels="$exp/it2/train.labels.jsonl" \
    data.valid="$exp/dev.tsv" data.valid_labels="$exp/it2/dev.labels.jsonl" pretrain.num_classes="$k2" \
    out="$exp/it2"
fi
if run_stage final_kmeans; then
  # shellcheck disable=SC2086  # km_preset is one optional override
  $SK train kmeans $km_preset data="$exp/train.tsv" features=hubert hubert="$exp/it2/model" layer="$layer" \
    k="$k_final" out="$exp/final"
fi
if run_stage final_units; then
  for split in train dev; do
    $SK encode "$exp/$split.tsv" --encoder "$exp/final/encoder" -o "$exp/final/$split.units.jsonl" --resume
  done
  echo "units: $exp/final/{train,dev}.units.jsonl; encoder: $exp/final/encoder"
fi
