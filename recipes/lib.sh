# recipes/lib.sh: the machinery every recipes/<name>/run.sh shares (stages, options, usage, errors, executables).
#
# A recipe is its header comment (the usage text), then
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   STAGES=(first second ...)    # its stages, in order
#   OPTIONS=(data exp num_units) # its options, as variables: --num-units VALUE sets num_units
#   FLAGS=(skip_bad)             # options without a value (optional): --skip-bad sets skip_bad=--skip-bad
#   data=...; exp=...            # the defaults
#   parse_options "$@"
#   if run_stage first; then ...; fi
#
# Conventions, the same in every recipe:
#   -h, --help                  the header comment and the option list on stdout; exit 0
#   --stage S --stop-stage S    the range of stages to run, each a name or a number (0 = the first); default: all;
#                               every stage prints "== NAME" on stdout as it starts
#   exit 1                      die MSG: the run cannot go on (an input is missing, an earlier stage did not run)
#   exit 2                      usage_error MSG: a bad command line (an unknown option, which also prints the usage;
#                               an option without its value; an unknown stage; a value outside its choices)
#   errors                      one line on stderr, prefixed with the recipe: "recipes/vocoder: ..."
#   SK, PY                      the speechkit command ${SPEECHKIT:-.venv/bin/speechkit}, which may carry arguments
#                               ("python -m speechkit.cli.main"), and the Python ${PYTHON:-.venv/bin/python}
#   RECIPES, ROOT               this folder and the repository, absolute
# shellcheck shell=bash
set -euo pipefail

RECIPE_SCRIPT=${BASH_SOURCE[1]:-$0}
RECIPE=recipes/$(basename "$(dirname "$RECIPE_SCRIPT")")
RECIPES=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # for the recipes
ROOT=$(dirname "$RECIPES")
# shellcheck disable=SC2034  # for the recipes
SK=${SPEECHKIT:-.venv/bin/speechkit}
# shellcheck disable=SC2034  # for the recipes
PY=${PYTHON:-.venv/bin/python}
STAGES=()
OPTIONS=()
FLAGS=()
stage=""
stop_stage=""
STAGE_FIRST=0
STAGE_LAST=-1

die() {  # die MSG: MSG on stderr, exit 1
  echo "$RECIPE: $*" >&2
  exit 1
}

usage_error() {  # usage_error MSG: MSG on stderr, exit 2
  echo "$RECIPE: $*" >&2
  exit 2
}

usage() {  # the script's header comment (from line 2 to the first line that is not a comment), then its options
  local o line="options:"
  awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$RECIPE_SCRIPT"
  for o in stage stop_stage "${OPTIONS[@]}" "${FLAGS[@]}" help; do
    if ((${#line} + ${#o} + 3 > 118)); then echo "$line"; line="        "; fi
    line+=" --${o//_/-}"
  done
  echo "$line"
}

_listed() {  # _listed WORD LIST...: true when WORD is one of LIST
  local w=$1 x
  shift
  for x; do [[ $x == "$w" ]] && return 0; done
  return 1
}

one_of() {  # one_of OPTION VALUE CHOICE...: a usage error unless VALUE is one of the choices
  local opt=$1 value=$2 list="" i
  shift 2
  _listed "$value" "$@" && return 0
  for ((i = 1; i <= $#; i++)); do
    if ((i == 1)); then list=${!i}; elif ((i == $#)); then list+=" or ${!i}"; else list+=", ${!i}"; fi
  done
  usage_error "$opt must be $list. Found '$value'"
}

stage_index() {  # stage_index NAME|NUMBER VAR: VAR = the stage's position in STAGES; a usage error if there is none
  local _i
  if [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 < ${#STAGES[@]})); then printf -v "$2" '%d' "$((10#$1))"; return 0; fi
  for _i in "${!STAGES[@]}"; do
    if [[ ${STAGES[$_i]} == "$1" ]]; then printf -v "$2" '%d' "$_i"; return 0; fi
  done
  usage_error "unknown stage '$1' (stages: ${STAGES[*]}; or their numbers, 0 to $((${#STAGES[@]} - 1)))"
}

parse_options() {  # parse_options "$@": sets the OPTIONS and FLAGS variables, stage and stop_stage, then the range
  local _arg _name
  while (($#)); do
    _arg=$1 _name=""
    case $_arg in
      -h | --help) usage; exit 0 ;;
      --[a-z0-9]*) [[ $_arg == *_* ]] || { _name=${_arg#--}; _name=${_name//-/_}; } ;;  # --num-units: num_units
    esac
    if [[ -n $_name ]] && _listed "$_name" "${FLAGS[@]}"; then
      printf -v "$_name" '%s' "$_arg"
      shift
      continue
    fi
    if [[ -z $_name ]] || ! _listed "$_name" stage stop_stage "${OPTIONS[@]}"; then
      usage >&2
      usage_error "unknown option '$_arg'"
    fi
    (($# >= 2)) || usage_error "$_arg needs a value"
    printf -v "$_name" '%s' "$2"
    shift 2
  done
  ((${#STAGES[@]})) || die "STAGES is empty: the recipe names its stages before parse_options"
  stage_index "${stage:-${STAGES[0]}}" STAGE_FIRST
  stage_index "${stop_stage:-${STAGES[${#STAGES[@]} - 1]}}" STAGE_LAST
  ((STAGE_FIRST <= STAGE_LAST)) ||
    usage_error "--stage ${STAGES[STAGE_FIRST]} comes after --stop-stage ${STAGES[STAGE_LAST]}"
}

run_stage() {  # run_stage NAME: true, after the banner "== NAME", when NAME is within --stage .. --stop-stage
  local i
  stage_index "$1" i
  ((STAGE_FIRST <= i && i <= STAGE_LAST)) || return 1
  echo "== $1"
}
