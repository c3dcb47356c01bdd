#!/usr/bin/env bash
# Your own speech, end to end: a folder of recordings -> OUT/bundle (encoder + unit-to-mel vocoder + unit LM) and
# its evaluation. OUT/bundle loads with Resynthesizer.from_pretrained / SpeechContinuation.from_pretrained and the
# CLI's --model.
#
#   bash recipes/own_data/run.sh --audio my_recordings/ --out exp/mine                  # CPU, preset small
#   bash recipes/own_data/run.sh --audio LibriSpeech/dev-clean --out exp/ls --preset base --device cuda
#   bash recipes/own_data/run.sh --audio clips/ --out exp/clips --transcripts clips.tsv --skip-bad \
#       --encoder hubert-base-ls960 --layer 6 --text-lm Qwen/Qwen2.5-0.5B
#
# Layouts (--layout auto detects): folder (any tree of audio soundfile reads; speaker = first folder level),
# librispeech (speaker/chapter/*.flac + *.trans.txt), expresso (the real release: read speech, official splits),
# manifest (a TSV with a header naming path [id speaker text]). Transcripts (--transcripts, or the layout's) make the
# evaluation a WER; without them it is the ASR agreement between original and resynthesis.
#
# Stages (names or numbers; --stage / --stop-stage run a range; each resumes after an interruption):
#   0 prepare  16 kHz mono WAV, per-speaker train/dev/test split         speechkit prepare own-data
#   1 hubert   --encoder scratch: a HuBERT trained on the corpus (two     recipes/hubert
#              iterations); otherwise where the named encoder's HuBERT is
#   2 kmeans   k-means (K = --k) on the HuBERT's --layer, train split     speechkit train kmeans
#   3 units    deduplicated units of every file                          speechkit encode
#   4 decoder  unit-to-mel decoder (speakers, duration predictor)         speechkit train unit_mel
#   5 melvoc   Vocos mel vocoder on the train split (--vocoder vocos)     speechkit train vocos
#   6 ulm      unit LM: warm start from --text-lm, or cold (none)         speechkit train ulm
#   7 bundle   OUT/bundle + its model card                                data_prep/make_bundle.py --prepared
#   8 eval     test split resynthesised; WER/CER, speaker similarity,     speechkit resynth + speechkit eval folder
#              DNSMOS against the originals -> OUT/eval/summary.md
#
# Presets: debug (tiny models, seconds a stage: CI), small (CPU: about 1.5 h in all for 1 h of audio), base (bigger
# models, longer: a GPU). --dec-args / --voc-args / --ulm-args / --km-args pass Hydra overrides to a stage.
# --nproc N runs the trainers (hubert, decoder, melvoc, ulm) under torchrun with N processes (--device cuda: N GPUs).

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(prepare hubert kmeans units decoder melvoc ulm bundle eval)
OPTIONS=(audio out layout transcripts encoder text_lm vocoder device preset k layer jobs nproc eval_limit dec_args
         voc_args ulm_args km_args)
FLAGS=(skip_bad)
audio=""
out=""
layout=auto
transcripts=""
encoder=default      # default | scratch | a folder or checkpoint | a card name (speechkit models)
text_lm=none         # none: cold start | a Hugging Face causal LM folder or name: TWIST warm start
vocoder=vocos        # vocos | griffinlim
device=cpu
preset=small
k=""
layer=""
skip_bad=""
jobs=2
nproc=1
eval_limit=40
dec_args=""
voc_args=""
ulm_args=""
km_args=""
parse_options "$@"
[[ -n $out ]] || usage_error "--out is required (the run's folder)"
one_of --preset "$preset" debug small base
one_of --vocoder "$vocoder" vocos griffinlim
one_of --device "$device" cpu cuda auto
[[ $nproc =~ ^[1-9][0-9]*$ ]] || usage_error "--nproc must be a positive number of processes. Found '$nproc'"
TRAIN=$SK   # the trainers; with --nproc > 1 under torchrun (DDP: gloo on CPU, NCCL on GPUs)
if [[ $nproc -gt 1 ]]; then TRAIN="$PY -m torch.distributed.run --standalone --nproc_per_node=$nproc -m speechkit.cli.main"; fi
data=$out/data
exp=$out/exp
mkdir -p "$exp"

# per-preset sizes and time budgets (a later run resumes a stage that ran out of minutes)
case $preset in
  debug) k=${k:-16}; sub=debug; km="preset=debug"; hub_preset=debug
         dec_time=""; voc_time=""; lm_preset="preset=debug"; eval_metrics=wer,cer,speaker; eval_limit=4;;
  small) k=${k:-100}; sub=small; km=""; hub_preset=small
         dec_time="optim.max_steps=8000 train.max_minutes=45"
         voc_time="optim.max_steps=12000 train.max_minutes=45"
         lm_preset="preset=mini optim.max_steps=600 train.block_size=256 model.size.hidden_size=128 \
model.size.intermediate_size=512"; eval_metrics=wer,cer,speaker,dnsmos;;
  base)  k=${k:-200}; sub=""; km=""; hub_preset=small
         dec_time="train.max_minutes=240"; voc_time="train.max_minutes=240"
         lm_preset="optim.max_steps=10000"; eval_metrics=wer,cer,speaker,dnsmos;;
esac
dec_preset=$([[ -n $sub ]] && echo "preset=$sub" || echo "")
voc_preset=$([[ $preset == debug ]] && echo "preset=debug" || echo "")

if run_stage prepare; then
  [[ -n $audio ]] ||
    usage_error "--audio is required for the prepare stage (a folder of recordings or a manifest TSV)"
  # shellcheck disable=SC2086  # skip_bad is one optional flag
  $SK prepare own-data "$audio" -o "$data" --layout "$layout" ${transcripts:+--transcripts "$transcripts"} \
    $skip_bad --jobs "$jobs"
fi
[[ -f $data/utterances.tsv ]] || die "$data/utterances.tsv: no prepared corpus; run the prepare stage first"
valid_list=$([[ -s $data/splits/dev.txt ]] && echo "$data/splits/dev.txt" || echo "null")

if run_stage hubert; then
  if [[ $encoder == scratch ]]; then
    mkdir -p "$exp/hubert"
    cp "$data/train.tsv" "$exp/hubert/train.tsv"
    cp "$data/dev.tsv" "$exp/hubert/dev.tsv"
    [[ -s $data/splits/dev.txt ]] || cp "$data/train.tsv" "$exp/hubert/dev.tsv"
    hl=${layer:-$([[ $preset == debug ]] && echo 2 || echo 3)}
    hk=$([[ $preset == debug ]] && echo "--k1 8 --k2 16" || echo "--k1 50 --k2 100")
    # shellcheck disable=SC2086
    SPEECHKIT=$SK SPEECHKIT_TRAIN=$TRAIN bash "$RECIPES/hubert/run.sh" --stage mfcc_kmeans --stop-stage pretrain_it2 \
      --preset "$hub_preset" --exp "$exp/hubert" --layer "$hl" $hk
    printf 'hubert=%q\nlayer_default=%q\n' "$exp/hubert/it2/model" "$hl" > "$exp/encoder.sh"
  else
    $PY "$ROOT/data_prep/own_data_encoder.py" "$encoder" > "$exp/encoder.sh.partial"
    mv "$exp/encoder.sh.partial" "$exp/encoder.sh"
  fi
  cat "$exp/encoder.sh"
fi
if run_stage kmeans; then
  [[ -f $exp/encoder.sh ]] || die "$exp/encoder.sh: run the hubert stage first"
  # shellcheck disable=SC1091
  source "$exp/encoder.sh"
  layer=${layer:-${layer_default:-}}
  [[ -n $layer ]] || usage_error "--encoder $encoder does not say which layer to cluster: give --layer"
  # shellcheck disable=SC2086,SC2154  # km / km_args hold Hydra overrides; encoder.sh sets hubert
  $SK train kmeans $km data="$data/train.tsv" features=hubert hubert="$hubert" layer="$layer" k="$k" \
    out="$exp/kmeans" $km_args
fi
if run_stage units; then
  $SK encode "$data/wav" -o "$exp/units.jsonl" --encoder "$exp/kmeans/encoder" --resume --device "${device/auto/cpu}"
fi
if run_stage decoder; then
  # shellcheck disable=SC2086  # the presets and dec_args hold several Hydra overrides
  $TRAIN train unit_mel $dec_preset data.units="$exp/units.jsonl" data.train_list="$data/splits/train.txt" \
    data.valid_list="$valid_list" data.speaker=parent model.num_units="$k" train.device="${device/auto/cpu}" \
    out="$exp/decoder" $dec_time $dec_args
fi
if run_stage melvoc && [[ $vocoder == vocos ]]; then
  # shellcheck disable=SC2086
  $TRAIN train vocos $voc_preset data.audio="$data/wav" data.train_list="$data/splits/train.txt" \
    data.valid_list="$valid_list" train.device="$device" out="$exp/vocos" $voc_time $voc_args
fi
if run_stage ulm; then
  $SK sequences "$exp/units.jsonl" -o "$exp/ulm_data" --include "$data/splits/train.txt" --valid-fraction 0.05
  init="model.init=cold"
  [[ $text_lm == none ]] || init="model.init=warm model.text_lm=$text_lm"
  # shellcheck disable=SC2086
  $TRAIN train ulm $lm_preset $init data.train="$exp/ulm_data/train.jsonl" data.valid="$exp/ulm_data/valid.jsonl" \
    data.num_units="$k" train.device="$device" out="$exp/ulm" $ulm_args
fi
if run_stage bundle; then
  ulm_dir="$exp/ulm/best"
  [[ -d $ulm_dir ]] || ulm_dir="$exp/ulm/model"
  mel=()
  [[ $vocoder == vocos ]] && mel=(--mel-vocoder "$exp/vocos/model")
  $PY "$ROOT/data_prep/make_bundle.py" --encoder "$exp/kmeans/encoder" --vocoder "$exp/decoder/model" "${mel[@]}" \
    --ulm "$ulm_dir" --prepared "$data" -o "$out/bundle"
  # the decoder's spectral-detail gain, measured on training speech (docs/vocoders.md, "Spectral-detail postfilter")
  $PY "$ROOT/data_prep/mel_postfilter.py" --vocoder "$out/bundle/vocoder" --units "$exp/units.jsonl" \
    --audio "$data/wav" --train-list "$data/splits/train.txt" --names parent --write
fi
if run_stage eval; then
  $PY "$ROOT/data_prep/own_data_eval.py" --prepared "$data" --bundle "$out/bundle" --limit "$eval_limit" \
    --metrics "$eval_metrics" --jobs "$jobs" -o "$out/eval"
fi
