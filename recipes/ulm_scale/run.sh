#!/usr/bin/env bash
# Unit LMs at scale on a CPU: a spoken story corpus ten times the bundle's unit-LM data, unit LMs of several sizes
# given the same measured compute budget, and their learning curves (validation loss, sSC and tSC against training
# tokens); with --text-lm, also a TWIST warm start in the text LM's shape beside its cold twin.
#
#   nice -n 5 bash recipes/ulm_scale/run.sh --storycloze exp/dpo/storycloze --sc-units exp/dpo/sc_units \
#       --text-lm checkpoints/default/textlm                           # the docs' study (2-core CPU, about 2 h)
#   bash recipes/ulm_scale/run.sh --preset debug --data D --exp E --stories 8 --storycloze S --sc-units SU \
#       --sizes "a:16:1:2:32 b:32:2:2:64" --minutes 0.05 --points 3       # a CI smoke run of every stage
#
# Stages (names or numbers; --stage / --stop-stage run a range):
#   0 speech     train stories spoken by --voices in --jobs parallel     speechkit prepare story-speech --shard
#                shards (resumable: a killed run keeps what it spoke)
#   1 units      encode them with --encoder, --jobs shards (--resume)   speechkit encode --shard --resume
#   2 sequences  dedup + train/valid split                              speechkit sequences
#   3 budget     --budget-steps of every size, --jobs at once (as the    speechkit train ulm; eval/twist/scale.py
#                train stage runs them): tokens/s, and the steps each
#                run gets from --minutes of one core
#   4 train      one cold start per size (+ warm and cold in the text    speechkit train ulm train.keep_every=...
#                LM's shape with --text-lm), validated and its model
#                kept (RUN/model_<step>) at --points evenly spaced steps
#   5 eval       sSC / tSC of every kept model and the last             speechkit eval storycloze
#   6 table      learning curves and the budget table                   eval/twist/scale.py table
#
# --sizes: NAME:HIDDEN:LAYERS:HEADS:FFN Llamas (cold starts; the text LM's runs are named warm and cold_text);
# --storycloze: sSC/ and tSC/ folders (speechkit prepare storycloze) and --sc-units their units by --encoder;
# --ulm-args passes Hydra overrides to every unit-LM run. Runs two single-thread jobs at a time by default: on two
# cores a third busy process slows every run several-fold.

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(speech units sequences budget train eval table)
OPTIONS=(preset data exp stories voices encoder num_units jobs sizes text_lm minutes budget_steps points
  storycloze sc_units ulm_args)
preset=mini
data=data/story_speech_10k
exp=exp/ulm_scale
stories=10000
voices="us1 us2 us3 en1"
encoder=checkpoints/default/encoder
num_units=200
jobs=2
sizes="m:256:6:4:1024 l:384:8:6:1536"  # the text LM's shape (0.9 M) comes with --text-lm
text_lm=""
minutes=30
budget_steps=20
points=8
storycloze=""
sc_units=""
ulm_args=""
parse_options "$@"
one_of --preset "$preset" mini debug
[[ $jobs =~ ^[1-9][0-9]*$ ]] || usage_error "--jobs must be a positive integer. Found '$jobs'"
[[ $points =~ ^[1-9][0-9]*$ ]] || usage_error "--points must be a positive integer. Found '$points'"
for spec in $sizes; do
  [[ $spec =~ ^[a-z0-9_]+:[0-9]+:[0-9]+:[0-9]+:[0-9]+$ ]] ||
    usage_error "--sizes: '$spec' is not NAME:HIDDEN:LAYERS:HEADS:FFN (e.g. m:256:6:4:1024)"
  [[ ${spec%%:*} != warm && ${spec%%:*} != cold_text ]] ||
    usage_error "--sizes: '${spec%%:*}' is the name of a --text-lm run; choose another"
done

# the runs: one cold start per size; with --text-lm, the TWIST pair in the text LM's shape
runs=()
for spec in $sizes; do runs+=("${spec%%:*}"); done
[[ -n $text_lm ]] && runs+=(warm cold_text)

run_args() {  # run_args RUN: the speechkit train ulm overrides that define RUN's model
  local run=$1 spec name h l a f
  case $run in
    warm) echo "model.init=warm model.text_lm=$text_lm" ;;
    cold_text) echo "model.init=cold model.text_lm=$text_lm" ;;
    *)
      for spec in $sizes; do
        IFS=: read -r name h l a f <<<"$spec"
        [[ $name == "$run" ]] || continue
        echo "model.init=cold model.text_lm=null model.size.hidden_size=$h model.size.num_hidden_layers=$l" \
          "model.size.num_attention_heads=$a model.size.intermediate_size=$f"
      done
      ;;
  esac
}

parallel() {  # parallel CMD...: run the commands (one string each), at most --jobs at a time; fail if any failed
  local cmd pids=() failed=0 pid
  for cmd; do
    bash -c "$cmd" &
    pids+=($!)
    if ((${#pids[@]} >= jobs)); then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  ((failed == 0))
}

train_common() {  # the overrides every unit-LM run shares
  echo "preset=$preset data.train=$exp/units/train.jsonl data.valid=$exp/units/valid.jsonl" \
    "data.num_units=$num_units"
}

if run_stage speech; then
  cmds=()
  for ((i = 0; i < jobs; i++)); do
    # shellcheck disable=SC2086  # voices is a list
    cmds+=("$SK prepare story-speech $data --stories $stories --voices $voices --shard $i/$jobs")
  done
  parallel "${cmds[@]}" || die "a speech job failed (rerun the stage: it resumes)"
  # the shard that finished last marks the folder complete; do it here when they finished together
  $SK prepare story-speech "$data" --stories "$stories" --voices $voices >/dev/null
fi
if run_stage units; then
  [[ -d $data/audio ]] || die "$data/audio: missing (run the speech stage)"
  cmds=()
  for ((i = 0; i < jobs; i++)); do
    cmds+=("$SK encode $data/audio -o $exp/units.$i.jsonl --encoder $encoder --shard $i/$jobs --resume --threads 1 --jobs 1")
  done
  parallel "${cmds[@]}" || die "an encoding job failed (rerun the stage: it resumes)"
fi
if run_stage sequences; then
  shards=()
  for ((i = 0; i < jobs; i++)); do
    [[ -f $exp/units.$i.jsonl ]] || die "$exp/units.$i.jsonl: missing (run the units stage with the same --jobs)"
    shards+=("$exp/units.$i.jsonl")
  done
  $SK sequences "${shards[@]}" -o "$exp/units" --valid-fraction 0.02
fi
if run_stage budget; then
  [[ -f $exp/units/train.jsonl ]] || die "$exp/units: missing (run the sequences stage)"
  cmds=()
  for run in "${runs[@]}"; do
    rm -rf "$exp/budget/$run"  # a fresh measurement every time
    cmds+=("OMP_NUM_THREADS=1 $SK train ulm $(train_common) $(run_args "$run") optim.max_steps=$budget_steps \
      train.valid_every=0 train.save_every=0 train.log_every=$budget_steps out=$exp/budget/$run $ulm_args")
  done
  parallel "${cmds[@]}" >"$exp/budget.log" 2>&1 || die "a budget run failed (see $exp/budget.log)"
  $PY "$ROOT/eval/twist/scale.py" budget --exp "$exp" --runs "${runs[@]}" --minutes "$minutes"
fi
if run_stage train; then
  [[ -f $exp/budget.json ]] || die "$exp/budget.json: missing (run the budget stage)"
  cmds=()
  for run in "${runs[@]}"; do
    read -r steps keep < <($PY "$ROOT/eval/twist/scale.py" steps --exp "$exp" --run "$run" --points "$points") ||
      die "$exp/budget.json: no steps for $run (rerun the budget stage with the same --sizes and --text-lm)"
    cmds+=("OMP_NUM_THREADS=1 $SK train ulm $(train_common) $(run_args "$run") optim.max_steps=$steps \
      train.keep_every=$keep train.valid_every=$keep out=$exp/runs/$run $ulm_args \
      >$exp/runs/$run.log 2>&1")
  done
  mkdir -p "$exp/runs"
  parallel "${cmds[@]}" || die "a training run failed (logs in $exp/runs/RUN.log; rerun the stage: it resumes)"
fi
if run_stage eval; then
  for opt in storycloze sc_units; do [[ -n ${!opt} ]] || usage_error "--${opt//_/-} is required by the eval stage"; done
  for run in "${runs[@]}"; do
    [[ -d $exp/runs/$run/model ]] || die "$exp/runs/$run: no model (run the train stage)"
    for model in "$exp/runs/$run"/model_* "$exp/runs/$run/model"; do
      [[ -d $model ]] || continue
      res=$exp/eval/$run/$(basename "$model")
      [[ -f $res/results.json ]] && continue  # resumable: each model's result is kept
      $SK eval storycloze "$storycloze/sSC" "$storycloze/tSC" --ulm "$model" \
        --units "$sc_units/sSC.jsonl" "$sc_units/tSC.jsonl" -o "$res" >/dev/null
    done
  done
fi
if run_stage table; then
  $PY "$ROOT/eval/twist/scale.py" table --exp "$exp" --runs "${runs[@]}" -o "$exp/table.md"
fi
