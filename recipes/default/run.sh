#!/usr/bin/env bash
# The default bundle (checkpoints/default): every model speechkit ships, trained on the synthetic mini-Expresso.
#
#   recipes/default/run.sh                                   # everything on CPU (hours)
#   recipes/default/run.sh --supervision none                # units from the self-supervised HuBERT alone
#   recipes/default/run.sh --preset debug --minutes 3 --ks "8 16" --k 16 --exp exp/default_debug \
#       --data data/mini_expresso_debug --out exp/default_debug/bundle   # a CI smoke run of every stage
#
# Stages (names or numbers; run a range with --stage / --stop-stage):
#   0 sources   ordinary English sentences (WordNet's usage examples)  data_prep/wordnet_sentences.py
#               mixed into the corpus's text (--text; none: grammar only)
#   1 corpus    120 minutes of read speech, 4 speakers x 5 styles     speechkit prepare mini-expresso
#   2 hubert    small HuBERT, two self-supervised iterations           speechkit train hubert (recipes/hubert)
#               (--hubert-init DIR: only the manifests; DIR is the start of phone_hubert)
#   3 phones    the synthesiser's phone of every 20 ms frame           speechkit prepare phone-labels
#   4 voices    English read by 16 MBROLA voices of other languages     data_prep/voices_corpus.py
#               (--voices utterances each; 0: off), labelled in the corpus's phones, merged with its manifest
#   5 phone_hubert  the iteration-2 HuBERT trained on, as masked and   speechkit train hubert train.init=...
#               unmasked targets, those phone labels (corpus + voices), under random recording conditions
#               (--augment: rooms, noise, channels, levels) and speed perturbation (--supervision phones)
#   6 kmeans    k-means on the HuBERT's --layer, one per K in --ks      speechkit train kmeans
#               (--tokenizer phones: the units are the phones pocketsphinx's en-us model recognises, K=42; stages
#               hubert..phone_hubert are skipped and this stage writes that encoder's folder)
#   7 units     deduplicated units of the read speech, per K            speechkit encode
#   8 probe     tokenizer benchmark of each K (PNMI, ABX, speaker       eval/tokenizer_benchmark.py
#               leakage, bitrate, decodability with a small decoder)
#   9 decoder   unit-to-mel decoder (speaker, style, duration           speechkit train unit_mel
#               predictor) per K; Griffin-Lim makes the waveform (--dec-init BUNDLE: starts from its decoder);
#               with --robust N it also learns from the units of N perturbed copies   data_prep/robust_units.py
#               of each training utterance (voice resampled, recording conditions) against the clean log-mel
#  10 melvoc    the Vocos mel vocoder on the train split's true         speechkit train vocos
#               log-mels (80 min), then fine-tuned with the phase       (loss.phase, train.init=)
#               losses (30 min; the bundle's waveform stage)
#  11 style     the MFCC style classifier that judges style accuracy   eval/style_accuracy.py
#  12 sweep     resynthesis WER / F0 / style / bitrate per K (table)    speechkit eval resynthesis
#  13 textlm    the small text LM (recipes/twist), and GenPPL's text   speechkit train textlm
#               LM on the same text normalised as ASR output            (data.normalize=asr)
#  14 ulm       TWIST: unit LM warm-started from the text LM (K=--k)    speechkit train ulm model.init=warm
#  15 bundle    encoder + decoder + Vocos + unit LM of K=--k -> --out   data_prep/make_bundle.py, mel_postfilter.py
# (A CodeHiFiGAN on the same units: recipes/vocoder, or `speechkit train vocoder`.)

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(sources corpus hubert phones voices phone_hubert kmeans units probe decoder melvoc style sweep textlm ulm bundle)
OPTIONS=(preset data exp out minutes jobs ks k layer supervision sweep_limit probe_steps dec_args phone_args voc_args
         device text text_share augment speed hubert_init dec_init voices ulm_args robust tokenizer)
preset=small
data=data/mini_expresso_120
exp=exp/default
out=checkpoints/default
minutes=120
jobs=2
ks="100 200"
k=100
layer=""   # HuBERT layer of the units: 4 of 4 (small, phone-trained), 3 of 4 (small, self-supervised), 2/1 (debug)
supervision=phones   # phones: the synthesiser's phone labels train the final HuBERT; none: self-supervised only
sweep_limit=60
probe_steps=""       # decoder steps of the tokenizer benchmark (default: 4000; debug: its preset's 4)
dec_args=""
phone_args=""
voc_args=""
ulm_args=""          # extra Hydra overrides of the unit LM (e.g. "optim.max_steps=400")
device=auto          # the Vocos stage's device: auto (cuda when there is one) | cpu | cuda
text=""              # extra corpus sentences (default: EXP/text/wordnet.txt, made by the sources stage); none: off
text_share=0.5       # share of read utterances from --text
augment=0.5          # phone_hubert: probability that a crop gets random recording conditions (0: clean only)
speed="14400,15200,16000,16800,17600"   # phone_hubert: speed perturbation rates (none: off)
hubert_init=""       # start phone_hubert from this HuBERT (skips the two self-supervised iterations)
dec_init=""          # start each decoder from this bundle's vocoder/, unit rows mapped from its encoder/ (unit_map.py)
voices=""            # voices stage: utterances per foreign MBROLA voice (default 150; debug 2); 0: off
tokenizer=hubert     # hubert: HuBERT + k-means units; phones: pocketsphinx's recognised phones (a teacher that
                     # knows real speech; docs/default_bundle.md, "Candidate v5"), K=42, --ks/--k ignored
robust=0             # decoder stage: perturbed copies of each training utterance to learn from too (0: off; not
                     # in the bundle: docs/default_bundle.md, "Candidate v4")
parse_options "$@"
one_of --tokenizer "$tokenizer" hubert phones
if [[ $tokenizer == phones ]]; then
  ks=42 k=42 supervision=none voices=0
fi
voices=${voices:-$([[ $preset == debug ]] && echo 2 || echo 150)}
# the debug preset shrinks every model; the full run uses each task's bundle-sized preset
km_preset=$([[ $preset == debug ]] && echo "preset=debug" || echo "")
dec_preset=$([[ $preset == debug ]] && echo "preset=debug" || echo "preset=small")
lm_preset=$([[ $preset == debug ]] && echo "debug" || echo "mini")
# the bundle's Vocos: 18000 steps (16 x 0.5 s) of mel + multi-resolution STFT losses, then the spectrogram
# discriminator joins; the 80-minute budget stopped the bundle's run at step 20449 (2-core CPU)
voc_mel=$([[ $preset == debug ]] && echo "" || echo "optim.max_steps=20500 train.discriminator_start=18000 \
loss.adversarial=1.0 train.threads=2 train.max_minutes=80")
# then 10000 steps from it with the phase losses added (group delay and frequency, x30; no GAN): DNSMOS of copy
# synthesis +0.2 on the dev split (docs/vocoders.md, "Phase losses")
voc_phase=$([[ $preset == debug ]] && echo "" || echo "optim.max_steps=10000 optim.lr=2e-4 optim.warmup_steps=100 \
train.threads=2")
text_docs=$([[ $preset == debug ]] && echo 200 || echo 20000)
probe_preset=$([[ $preset == debug ]] && echo "--preset debug --test-count 4 --leak-per-speaker 5" \
  || echo "--decoder-steps ${probe_steps:-4000}")
one_of --supervision "$supervision" phones none
hubert=${hubert_init:-$exp/hubert/it2/model}
[[ $supervision == phones ]] && hubert=$exp/phone_hubert/model
text=${text:-$exp/text/wordnet.txt}
speed_arg=$([[ $speed == none ]] && echo "" || echo "data.speed_perturb=[$speed]")
# shellcheck disable=SC2015  # echo does not fail
layer=${layer:-$([[ $preset == debug ]] && echo 2 || { [[ $supervision == phones ]] && echo 4 || echo 3; })}

if run_stage sources && [[ $text != none && $text == "$exp/text/wordnet.txt" ]]; then
  $PY data_prep/wordnet_sentences.py -o "$text"
fi
if run_stage corpus; then
  text_opts=()
  [[ $text != none ]] && text_opts=(--text "$text" --text-share "$text_share")
  $SK prepare mini-expresso "$data" --minutes "$minutes" --jobs "$jobs" "${text_opts[@]}"
fi
if run_stage hubert && [[ $tokenizer == hubert ]]; then
  hubert_last=$([[ -n $hubert_init ]] && echo manifests || echo pretrain_it2)
  SPEECHKIT=$SK bash "$RECIPES/hubert/run.sh" --stage manifests --stop-stage "$hubert_last" --preset "$preset" \
    --data "$data" --exp "$exp/hubert" --layer "$layer"
fi
if run_stage phones && [[ $supervision == phones ]]; then
  $SK prepare phone-labels "$data" --manifest "$exp/hubert/train.tsv" -o "$exp/phones/train.labels.jsonl"
  $SK prepare phone-labels "$data" --manifest "$exp/hubert/dev.tsv" -o "$exp/phones/dev.labels.jsonl" \
    --inventory "$exp/phones/phones.txt"
fi
if run_stage voices && [[ $supervision == phones && $voices != 0 ]]; then
  text_opts=()
  [[ $text != none ]] && text_opts=(--text "$text")
  $PY data_prep/voices_corpus.py "$exp/voices" --per-voice "$voices" --inventory "$exp/phones/phones.txt" \
    "${text_opts[@]}" --merge "$exp/hubert/train.tsv" "$exp/phones/train.labels.jsonl"
fi
if run_stage phone_hubert && [[ $supervision == phones ]]; then
  phone_train=$exp/hubert/train.tsv
  phone_labels=$exp/phones/train.labels.jsonl
  if [[ $voices != 0 ]]; then phone_train=$exp/voices/merged.tsv; phone_labels=$exp/voices/merged.labels.jsonl; fi
  # shellcheck disable=SC2086  # phone_args holds several Hydra overrides
  $SK train hubert preset="$preset" data.train="$phone_train" data.train_labels="$phone_labels" \
    data.valid="$exp/hubert/dev.tsv" data.valid_labels="$exp/phones/dev.labels.jsonl" data.cache=true \
    data.num_workers=0 pretrain.num_classes="$(wc -l < "$exp/phones/phones.txt")" pretrain.unmasked_weight=1.0 \
    pretrain.mask_prob=0.4 train.init="${hubert_init:-$exp/hubert/it2/model}" data.augment="$augment" $speed_arg \
    out="$exp/phone_hubert" $phone_args
fi
if run_stage kmeans; then
  if [[ $tokenizer == phones ]]; then  # no k-means: the encoder folder of pocketsphinx's phones
    $PY -m speechkit.units.phones "$exp/k$k/encoder"
  else
    for K in $ks; do
      # shellcheck disable=SC2086  # km_preset is one optional override
      $SK train kmeans $km_preset data="$exp/hubert/train.tsv" features=hubert hubert="$hubert" layer="$layer" \
        k="$K" out="$exp/k$K"
    done
  fi
fi
if run_stage units; then
  for K in $ks; do
    $SK encode "$data/audio_48khz/read" -o "$exp/k$K/units.jsonl" --encoder "$exp/k$K/encoder" --resume
  done
fi
if run_stage probe; then
  # shellcheck disable=SC2046,SC2086
  $PY eval/tokenizer_benchmark.py $(for K in $ks; do echo "k$K=$exp/k$K/encoder"; done) --data "$data" \
    $probe_preset --work "$exp/tokenizer_benchmark" -o "$exp/tokenizer_benchmark.md"
fi
if run_stage decoder; then
  for K in $ks; do
    init_args=""
    if [[ -n $dec_init ]]; then
      $PY data_prep/unit_map.py --old "$dec_init/encoder" --new "$exp/k$K/encoder" --manifest "$exp/hubert/train.tsv" \
        -o "$exp/k$K/unit_map.json"
      init_args="train.init=$dec_init/vocoder train.init_unit_map=$exp/k$K/unit_map.json"
    fi
    dec_units=$exp/k$K/units.jsonl
    if [[ $robust != 0 ]]; then  # + units of perturbed copies, each paired with its clean audio (resumes)
      $PY data_prep/robust_units.py --encoder "$exp/k$K/encoder" --units "$exp/k$K/units.jsonl" \
        --list "$data/splits/train.txt" --copies "$robust" -o "$exp/k$K/units_robust.jsonl"
      dec_units=$exp/k$K/units_robust.jsonl
    fi
    # shellcheck disable=SC2086  # dec_args and init_args hold several Hydra overrides
    $SK train unit_mel $dec_preset $init_args data.units="$dec_units" data.train_list="$data/splits/train.txt" \
      data.valid_list="$data/splits/dev.txt" data.speaker=expresso data.style=expresso model.num_units="$K" \
      out="$exp/k$K/decoder" $dec_args
  done
fi
if run_stage melvoc; then
  # shellcheck disable=SC2086  # the *_args hold several Hydra overrides
  $SK train vocos $km_preset data.audio="$data/audio_48khz/read" data.train_list="$data/splits/train.txt" \
    data.valid_list="$data/splits/dev.txt" train.device="$device" out="$exp/vocos" $voc_mel $voc_args
  # shellcheck disable=SC2086
  $SK train vocos $km_preset data.audio="$data/audio_48khz/read" data.train_list="$data/splits/train.txt" \
    data.valid_list="$data/splits/dev.txt" train.device="$device" train.init="$exp/vocos/model" \
    loss.adversarial=0 loss.phase=30 loss.phase_ip=0 out="$exp/vocos_phase" $voc_phase $voc_args
fi
if run_stage style; then
  $PY eval/style_accuracy.py "$data" --features mfcc --prepared "$exp/segments" --jobs "$jobs" --save "$exp/style" \
    | tee "$exp/style_accuracy.json"
fi
if run_stage sweep; then
  for K in $ks; do
    $SK eval resynthesis --data "$exp/segments" --split test --kinds read --limit "$sweep_limit" \
      --encoder "$exp/k$K/encoder" --vocoder "$exp/k$K/decoder/model" --metrics wer,f0 \
      --style-classifier "$exp/style" --jobs "$jobs" --no-media -o "$exp/k$K/sweep"
  done
  # shellcheck disable=SC2046  # one folder per K
  $PY data_prep/k_tradeoff.py $(for K in $ks; do echo "$exp/k$K"; done) --style-classifier "$exp/style" \
    -o "$exp/k_tradeoff.md"
fi
if run_stage textlm; then
  SPEECHKIT=$SK bash "$RECIPES/twist/run.sh" --stage text --stop-stage textlm --preset "$lm_preset" \
    --text-docs "$text_docs" --data "$exp/text_data" --exp "$exp/twist"
  genppl_steps=$([[ $preset == debug ]] && echo "" || echo "optim.max_steps=800")
  # shellcheck disable=SC2086  # genppl_steps is one optional override
  $SK train textlm preset="$lm_preset" data.train="$exp/text_data/text/train.txt" \
    data.valid="$exp/text_data/text/valid.txt" data.normalize=asr out="$exp/genppl_lm" $genppl_steps
fi
if run_stage ulm; then
  $SK sequences "$exp/k$k/units.jsonl" -o "$exp/ulm_data" --include "$data/splits/train.txt" --valid-fraction 0.05
  # shellcheck disable=SC2086  # ulm_args holds several Hydra overrides
  $SK train ulm preset="$lm_preset" model.init=warm model.text_lm="$exp/twist/textlm/model" \
    data.train="$exp/ulm_data/train.jsonl" data.valid="$exp/ulm_data/valid.jsonl" data.num_units="$k" \
    out="$exp/ulm" $ulm_args
fi
if run_stage bundle; then
  ulm_dir="$exp/ulm/best"  # the lowest validation loss; runs older than out/best have only the last model
  [ -d "$ulm_dir" ] || ulm_dir="$exp/ulm/model"
  note="self-supervised (HuBERT masked prediction of its own clusters, two iterations); no labels"
  start="two self-supervised HuBERT iterations"
  [[ -n $hubert_init ]] && start="the HuBERT in $hubert_init (as it was when this bundle was built)"
  conditions="clean audio"
  [[ $augment != 0 && $augment != 0.0 ]] && conditions="random recording conditions on a share $augment of the crops \
(rooms, noise, telephone and band limits, levels, clipping)"
  [[ $speed != none ]] && conditions="$conditions, speed perturbation"
  [[ $voices != 0 ]] && conditions="$conditions; with $voices utterances of each of 16 MBROLA voices of other languages \
reading English (data_prep/voices_corpus.py)"
  [[ $supervision == phones ]] && note="$start, then training on the synthesiser's frame-level phone labels \
($(wc -l < "$exp/phones/phones.txt") MBROLA phones) as masked and unmasked targets, under $conditions: \
phone-supervised, like the HuBERT paper's forced-alignment top line; real speech needs the self-supervised \
recipe (--supervision none)"
  [[ $tokenizer == phones ]] && note="none in this recipe: pocketsphinx's en-us acoustic model (CMU Sphinx, trained \
on real recorded speech) recognises the phones, decoded without words (allphone search)"
  $PY data_prep/make_bundle.py --encoder "$exp/k$k/encoder" --vocoder "$exp/k$k/decoder/model" \
    --mel-vocoder "$exp/vocos_phase/model" \
    --ulm "$ulm_dir" --text-lm "$exp/genppl_lm/model" --corpus "$data" --minutes "$minutes" --supervision "$note" \
    -o "$out"
  # the decoder's spectral-detail gain, measured on training speech (docs/vocoders.md, "Spectral-detail postfilter")
  $PY data_prep/mel_postfilter.py --vocoder "$out/vocoder" --units "$exp/k$k/units.jsonl" \
    --audio "$data/audio_48khz/read" --train-list "$data/splits/train.txt" --write
fi
