#!/usr/bin/env bash
# Prints DEST, first restoring it from git when this machine lacks it: a training state that was committed
# once and has since been replaced (the repository keeps one training state, the line being trained).
#
#   state=$(bash alit_train/state_from_git.sh COMMIT:PATH DEST)
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: state_from_git.sh COMMIT:PATH DEST"
source=${1:?$usage}
dest=${2:?$usage}
if [ ! -f "$dest" ]; then
  mkdir -p "$(dirname "$dest")"
  git show "$source" > "$dest.part"  # renamed once whole: an interrupted restore leaves no DEST
  mv "$dest.part" "$dest"
fi
echo "$dest"
