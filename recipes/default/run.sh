#!/usr/bin/env bash
# The default bundle (checkpoints/default): every model speechkit ships, trained on the synthetic mini-Expresso.
#
#   recipes/default/run.sh                                   # everything on CPU (hours: the vocoders dominate)
#   recipes/default/run.sh --stage pre_vocoder --stop-stage pre_vocoder --pre-args "train.max_minutes=3"  # on a GPU
#   recipes/default/run.sh --preset debug --minutes 2 --ks "8 16" --k 16 --exp exp/default_debug \
#       --data data/mini_expresso_debug --out exp/default_debug/bundle   # a CI smoke run of every stage
#
# Stages (names or numbers; run a range with --stage / --stop-stage):
#   0 corpus    120 minutes of read speech, 4 speakers x 5 styles     speechkit prepare mini-expresso
#   1 hubert    small HuBERT, two iterations (recipes/hubert)           speechkit train hubert
#   2 kmeans    k-means on the iteration-2 layer, one per K in --ks     speechkit train kmeans
#   3 units     deduplicated units of the read speech, per K            speechkit encode
#   4 probe     phone purity / PNMI / bitrate of each K's units          data_prep/phone_probe.py
#   5 pre_vocoder  CodeHiFiGAN body on the iteration-1 labels (any     speechkit train vocoder preset=small
#               tokenizer's units teach waveform generation; GPU)
#   6 vocoder   CodeHiFiGAN (speaker, style, duration predictor) per K, speechkit train vocoder train.init=...
#               warm-started from pre_vocoder when it exists
#   7 style     the MFCC style classifier that judges style accuracy   eval/style_accuracy.py
#   8 sweep     resynthesis WER / F0 / style / bitrate per K (table)    speechkit eval resynthesis
#   9 textlm    the small text LM (recipes/twist)                       speechkit train textlm
#  10 ulm       TWIST: unit LM warm-started from the text LM (K=--k)    speechkit train ulm model.init=warm
#  11 bundle    encoder + vocoder + unit LM of K=--k -> --out           data_prep/make_bundle.py
set -euo pipefail

STAGES=(corpus hubert kmeans units probe pre_vocoder vocoder style sweep textlm ulm bundle)
stage=corpus
stop_stage=bundle
preset=small
data=data/mini_expresso_120
exp=exp/default
out=checkpoints/default
minutes=120
jobs=2
ks="50 100 200"
k=100
layer=""   # HuBERT layer of the units: 3 of 4 (small), 1 of 2 (debug)
sweep_limit=60
voc_args=""
pre_args=""
SK=${SPEECHKIT:-.venv/bin/speechkit}
PY=${PYTHON:-.venv/bin/python}

usage() { sed -n '2,23p' "$0"; echo "options: --stage --stop-stage --preset --data --exp --out --minutes --jobs --ks"\
  "--k --layer --sweep-limit --voc-args --pre-args"; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage=$2; shift 2;;
    --stop-stage) stop_stage=$2; shift 2;;
    --preset) preset=$2; shift 2;;
    --data) data=$2; shift 2;;
    --exp) exp=$2; shift 2;;
    --out) out=$2; shift 2;;
    --minutes) minutes=$2; shift 2;;
    --jobs) jobs=$2; shift 2;;
    --ks) ks=$2; shift 2;;
    --k) k=$2; shift 2;;
    --layer) layer=$2; shift 2;;
    --sweep-limit) sweep_limit=$2; shift 2;;
    --voc-args) voc_args=$2; shift 2;;
    --pre-args) pre_args=$2; shift 2;;
    -h|--help) usage 0;;
    *) echo "unknown option $1" >&2; usage 1;;
  esac
done
index() { local i; if [[ $1 =~ ^[0-9]+$ ]]; then echo "$1"; return; fi
          for i in "${!STAGES[@]}"; do [[ ${STAGES[$i]} == "$1" ]] && { echo "$i"; return; }; done
          echo "unknown stage '$1' (stages: ${STAGES[*]})" >&2; exit 1; }
first=$(index "$stage"); last=$(index "$stop_stage")
run_stage() { local i; i=$(index "$1"); [[ $i -ge $first && $i -le $last ]] && echo "== $1"; }
# the debug preset shrinks every model; the full run uses each task's bundle-sized preset
km_preset=$([[ $preset == debug ]] && echo "preset=debug" || echo "")
voc_preset=$([[ $preset == debug ]] && echo "debug" || echo "small")
lm_preset=$([[ $preset == debug ]] && echo "debug" || echo "mini")
text_docs=$([[ $preset == debug ]] && echo 200 || echo 20000)
probe_sentences=$([[ $preset == debug ]] && echo 2 || echo 40)
hubert=$exp/hubert/it2/model
k1=50      # the iteration-1 (MFCC k-means) label vocabulary of recipes/hubert
layer=${layer:-$([[ $preset == debug ]] && echo 1 || echo 3)}

if run_stage corpus; then
  $SK prepare mini-expresso "$data" --minutes "$minutes" --jobs "$jobs"
fi
if run_stage hubert; then
  SPEECHKIT=$SK bash "$(dirname "$0")/../hubert/run.sh" --stage manifests --stop-stage pretrain_it2 --preset "$preset" \
    --data "$data" --exp "$exp/hubert" --layer "$layer"
fi
if run_stage kmeans; then
  for K in $ks; do
    $SK train kmeans $km_preset data="$exp/hubert/train.tsv" features=hubert hubert="$hubert" layer="$layer" \
      k="$K" out="$exp/k$K"
  done
fi
if run_stage units; then
  for K in $ks; do
    $SK encode "$data/audio_48khz/read" -o "$exp/k$K/units.jsonl" --encoder "$exp/k$K/encoder" --resume
  done
fi
if run_stage probe; then
  # shellcheck disable=SC2046
  $PY data_prep/phone_probe.py $(for K in $ks; do echo "$exp/k$K/encoder"; done) --data "$data" \
    --sentences "$probe_sentences" -o "$exp/phone_probe.md"
fi
if run_stage pre_vocoder; then
  # shellcheck disable=SC2086  # pre_args holds several Hydra overrides
  $SK train vocoder preset="$voc_preset" data.units="$exp/hubert/it1/train.labels.jsonl" \
    data.valid_units="$exp/hubert/it1/dev.labels.jsonl" data.valid_count=4 data.speaker=expresso data.style=expresso \
    model.num_units="$k1" out="$exp/pre_vocoder" train.export_official=false $pre_args
fi
if run_stage vocoder; then
  init=$([[ -f $exp/pre_vocoder/model/model.safetensors ]] && echo "train.init=$exp/pre_vocoder/model" || echo "")
  for K in $ks; do
    # shellcheck disable=SC2086  # voc_args holds several Hydra overrides
    $SK train vocoder preset="$voc_preset" data.units="$exp/k$K/units.jsonl" data.train_list="$data/splits/train.txt" \
      data.valid_list="$data/splits/dev.txt" data.speaker=expresso data.style=expresso model.num_units="$K" \
      out="$exp/k$K/vocoder" $init $voc_args
  done
fi
if run_stage style; then
  $PY eval/style_accuracy.py "$data" --features mfcc --prepared "$exp/segments" --jobs "$jobs" --save "$exp/style" \
    | tee "$exp/style_accuracy.json"
fi
if run_stage sweep; then
  for K in $ks; do
    $SK eval resynthesis --data "$exp/segments" --split test --kinds read --limit "$sweep_limit" \
      --encoder "$exp/k$K/encoder" --vocoder "$exp/k$K/vocoder/model" --metrics wer,f0 \
      --style-classifier "$exp/style" --jobs "$jobs" --no-media -o "$exp/k$K/sweep"
  done
  # shellcheck disable=SC2086
  $PY data_prep/k_tradeoff.py $(for K in $ks; do echo "$exp/k$K"; done) --style-classifier "$exp/style" \
    -o "$exp/k_tradeoff.md"
fi
if run_stage textlm; then
  SPEECHKIT=$SK bash "$(dirname "$0")/../twist/run.sh" --stage text --stop-stage textlm --preset "$lm_preset" \
    --text-docs "$text_docs" --data "$exp/text_data" --exp "$exp/twist"
fi
if run_stage ulm; then
  $SK sequences "$exp/k$k/units.jsonl" -o "$exp/ulm_data" --include "$data/splits/train.txt" --valid-fraction 0.05
  $SK train ulm preset="$lm_preset" model.init=warm model.text_lm="$exp/twist/textlm/model" \
    data.train="$exp/ulm_data/train.jsonl" data.valid="$exp/ulm_data/valid.jsonl" data.num_units="$k" \
    train.out_dir="$exp/ulm"
fi
if run_stage bundle; then
  ulm_dir="$exp/ulm/best"  # the lowest validation loss; runs older than out/best have only the last model
  [ -d "$ulm_dir" ] || ulm_dir="$exp/ulm/model"
  $PY data_prep/make_bundle.py --encoder "$exp/k$k/encoder" --vocoder "$exp/k$k/vocoder/model" \
    --ulm "$ulm_dir" --corpus "$data" --minutes "$minutes" -o "$out"
fi
