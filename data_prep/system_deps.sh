#!/usr/bin/env bash
# Installs the Debian packages speechkit needs: libsndfile (audio I/O), espeak-ng and the MBROLA voices
# us1/us2/us3/en1 (offline speech synthesis for the synthetic corpora), the 16 MBROLA voices of other languages that
# espeak-ng speaks English with (the default recipe's voices stage: data_prep/voices_corpus.py), wordnet-base (WordNet's usage examples: the
# ordinary English the default corpus mixes into its text), and chromium (the headless browser that renders the
# evaluation report in its test).
#
# MBROLA lives in Debian's contrib (engine) and non-free (voices) components. When the machine's apt sources
# do not enable them, a sources entry is derived from the existing Debian entries (same URIs, suites and keys,
# components "contrib non-free"); no mirror address is ever written here.
# Safe to re-run: does nothing when every package is already installed.
set -euo pipefail

PACKAGES=(libsndfile1 espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 wordnet-base chromium
          mbrola-af1 mbrola-nl2 mbrola-fr1 mbrola-fr4 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6
          mbrola-gr2 mbrola-hu1 mbrola-pl1 mbrola-ro1 mbrola-sw1 mbrola-sw2)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${PACKAGES[*]})"
  exit 0
fi
echo "system packages: installing ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: installing ${missing[*]} needs root (run 'make install' as root or install sudo)" >&2
    exit 1
  fi
fi

sources_enable_nonfree() {
  # True when some enabled apt source already offers the non-free component.
  grep -rhsE '^(Components:.*\bnon-free\b|deb(\s+\[[^]]*\])?\s+\S+\s+\S+.*\bnon-free\b)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ >/dev/null 2>&1
}

if ! sources_enable_nonfree; then
  derived_deb822=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in *speechkit-contrib-nonfree*) continue ;; esac
    # Keep every Debian stanza as it is, only the components change.
    derived_deb822+=$(awk 'BEGIN{RS=""; ORS="\n\n"} /Types:/ && /debian/ && !/Enabled: *no/' "$f" \
                      | sed -E 's/^Components:.*/Components: contrib non-free/')
    derived_deb822+=$'\n'
  done
  if [ -n "${derived_deb822//[$'\n' ]/}" ]; then
    printf '%s\n' "$derived_deb822" | $SUDO tee /etc/apt/sources.list.d/speechkit-contrib-nonfree.sources >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    grep -E '^deb\s' /etc/apt/sources.list | grep -i debian \
      | sed -E 's/^(deb(\s+\[[^]]*\])?\s+\S+\s+\S+)\s+.*/\1 contrib non-free/' \
      | $SUDO tee /etc/apt/sources.list.d/speechkit-contrib-nonfree.list >/dev/null
  else
    echo "warning: no Debian apt sources found to derive contrib/non-free from; MBROLA voices may be missing" >&2
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
