#!/usr/bin/env bash
# TWIST where it should show: warm vs cold start of a unit LM at several speech-data sizes, over seeds, with a text
# LM that knows more than the speech (trained on far more text, including stories the speech never tells), probed
# by spoken StoryCloze on those stories.
#
#   bash recipes/twist_data/run.sh --units exp/twist_low/full --text-lm checkpoints/default/textlm \
#       --storycloze exp/dpo/storycloze --sc-units exp/dpo/sc_units        # the docs' study (CPU, about 1 h)
#   bash recipes/twist_data/run.sh --preset debug --units U --text-lm T --storycloze S --sc-units SU \
#       --exp exp/twist_data_debug --fractions "50 100" --seeds "0 1"     # a CI smoke run of every stage
#
# Stages (names or numbers; --stage / --stop-stage run a range):
#   0 subsets  nested random subsets of --units/train.jsonl (--fractions,   data_prep/units_subsets.py
#              percent; the same valid.jsonl for all)
#   1 train    a unit LM per size x seed x init (--inits warm cold)         speechkit train ulm
#   2 eval     sSC / tSC of each run's best-validation model                speechkit eval storycloze
#   3 table    paired warm - cold differences, 95% intervals over seeds     eval/twist/data_table.py
#
# --units: a folder with train.jsonl / valid.jsonl (speechkit sequences); --storycloze: sSC/ and tSC/ folders
# (speechkit prepare storycloze) and --sc-units their units (SC_UNITS/sSC.jsonl, tSC.jsonl, same tokenizer);
# --ulm-args passes Hydra overrides to every unit-LM run (e.g. optim.max_steps=400).

# shellcheck source=recipes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

STAGES=(subsets train eval table)
OPTIONS=(preset units text_lm storycloze sc_units exp fractions seeds inits num_units ulm_args)
preset=mini
units=""
text_lm=""
storycloze=""
sc_units=""
exp=exp/twist_data
fractions="10 30 100"
seeds="0 1 2"
inits="warm cold"
num_units=200
ulm_args=""
parse_options "$@"
one_of --preset "$preset" mini debug
for opt in units text_lm storycloze sc_units; do
  [[ -n ${!opt} ]] || usage_error "--${opt//_/-} is required"
done
[[ -f $units/train.jsonl && -f $units/valid.jsonl ]] || die "--units $units: needs train.jsonl and valid.jsonl"

if run_stage subsets; then
  # shellcheck disable=SC2086  # fractions is a list
  $PY "$ROOT/data_prep/units_subsets.py" --train "$units/train.jsonl" --valid "$units/valid.jsonl" \
    --fractions $fractions -o "$exp/data"
fi
if run_stage train; then
  for f in $fractions; do for s in $seeds; do for init in $inits; do
    [[ -f $exp/data/p$f/train.jsonl ]] || die "$exp/data/p$f: missing (run the subsets stage)"
    # shellcheck disable=SC2086  # ulm_args holds several Hydra overrides
    $SK train ulm preset="$preset" model.init="$init" model.text_lm="$text_lm" train.seed="$s" \
      data.train="$exp/data/p$f/train.jsonl" data.valid="$exp/data/p$f/valid.jsonl" data.num_units="$num_units" \
      out="$exp/p$f/seed$s/ulm_$init" $ulm_args
  done; done; done
fi
if run_stage eval; then
  for f in $fractions; do for s in $seeds; do for init in $inits; do
    run=$exp/p$f/seed$s/ulm_$init
    model=$run/best
    [[ -d $model ]] || model=$run/model
    [[ -d $model ]] || die "$run: no model (run the train stage)"
    $SK eval storycloze "$storycloze/sSC" "$storycloze/tSC" --ulm "$model" \
      --units "$sc_units/sSC.jsonl" "$sc_units/tSC.jsonl" -o "$exp/p$f/seed$s/eval_$init"
  done; done; done
fi
if run_stage table; then
  # shellcheck disable=SC2086  # lists
  $PY "$ROOT/eval/twist/data_table.py" --exp "$exp" --fractions $fractions --seeds $seeds -o "$exp/table.md"
fi
