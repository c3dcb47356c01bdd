#!/usr/bin/env bash
# Preference alignment of a bundle's unit LM (DPO, as slamkit does): its own continuations of train-split prompts,
# ranked by an ASR + text-LM ranker trained apart from the GenPPL judge, become preference pairs; DPO aligns the
# unit LM to them; the aligned and the original LM are compared on test-split prompts (GenPPL under the bundle's
# judge, diversity by auto-BLEU).
#
#   bash recipes/dpo/run.sh --data data/mini_expresso_120                   # the docs' study (CPU, about 1 h)
#   bash recipes/dpo/run.sh --preset debug --data DATA --exp exp/dpo_debug --prompts 8 --k 2 --ranker-docs 200 \
#       --eval-prompts 2 --samples 1                                        # a CI smoke run of every stage
#
# Stages (names or numbers; --stage / --stop-stage run a range; candidates resumes after an interruption):
#   0 ranker      the ranker's text LM: its own text corpus (seed 1), a     speechkit train textlm
#                 smaller Llama than the judge's
#   1 candidates  --k continuations of --prompts train prompts, spoken,     data_prep/dpo_pairs.py candidates
#                 transcribed and ranked (--jobs processes)
#   2 pairs       the --top best vs the --top worst candidates of each       data_prep/dpo_pairs.py pairs
#                 prompt -> train.jsonl / valid.jsonl
#   3 train       DPO from --model's ulm/ (also the reference)              speechkit train dpo
#   4 eval        before / after on test prompts -> EXP/eval/results.md     eval/dpo.py
#
# --data is a mini-Expresso (speechkit prepare mini-expresso) whose speech --model's units and voices fit;
# --dpo-args passes Hydra overrides to the train stage.

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(ranker candidates pairs train eval)
OPTIONS=(preset data model exp prompts k top jobs ranker_docs eval_prompts samples dpo_args)
preset=mini
data=""
model=checkpoints/default
exp=exp/dpo
prompts=500
k=8
top=2
jobs=2
ranker_docs=10000
eval_prompts=100
samples=3
dpo_args=""
parse_options "$@"
one_of --preset "$preset" mini debug
[[ -n $data ]] || usage_error "--data is required (a mini-Expresso: speechkit prepare mini-expresso DATA)"
[[ -d $data ]] || die "--data $data: no such folder"
[[ -f $model/ulm/unit_lm.json ]] || die "--model $model: no ulm/ unit LM in it"
textlm_preset=$([[ $preset == debug ]] && echo debug || echo mini)
ranker_steps=$([[ $preset == debug ]] && echo "" || echo "optim.max_steps=800")

if run_stage ranker; then
  $SK prepare text-corpus "$exp/ranker_text" --stories $((ranker_docs / 2)) --sentences $((ranker_docs / 2)) --seed 1
  # shellcheck disable=SC2086  # ranker_steps is one optional override
  $SK train textlm preset="$textlm_preset" model.hidden_size=64 model.num_hidden_layers=2 \
    model.num_attention_heads=2 model.intermediate_size=192 data.train="$exp/ranker_text/train.txt" \
    data.valid="$exp/ranker_text/valid.txt" data.normalize=asr out="$exp/ranker_lm" $ranker_steps
fi
if run_stage candidates; then
  [[ -d $exp/ranker_lm/model ]] || die "$exp/ranker_lm/model: missing (run the ranker stage)"
  pids=()
  for ((i = 0; i < jobs; i++)); do
    $PY "$ROOT/data_prep/dpo_pairs.py" candidates --model "$model" --ranker-lm "$exp/ranker_lm/model" \
      --data "$data" --prompts "$prompts" --k "$k" --shard "$i/$jobs" -o "$exp/pairs" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a candidates job failed (rerun the stage: it resumes)"; done
fi
if run_stage pairs; then
  $PY "$ROOT/data_prep/dpo_pairs.py" pairs --top "$top" -o "$exp/pairs"
fi
if run_stage train; then
  # shellcheck disable=SC2086  # dpo_args holds several Hydra overrides
  $SK train dpo preset="$preset" data.train="$exp/pairs/train.jsonl" data.valid="$exp/pairs/valid.jsonl" \
    model.init="$model/ulm" out="$exp/run" $dpo_args
fi
if run_stage eval; then
  $PY "$ROOT/eval/dpo.py" --model "$model" --aligned "$exp/run/model" --data "$data" --prompts "$eval_prompts" \
    --samples "$samples" -o "$exp/eval"
fi
