#!/usr/bin/env bash
# Start a long job (a training script) as background work that yields the CPU to everything else:
# detached in a session of its own, at nice 10, and with that session's scheduling group at nice 10.
#
#   bash alit_train/background.sh LOG COMMAND [ARGS...]
#   e.g. bash alit_train/background.sh runs/vae_alit.log bash alit_train/continue_v2_vae_alit.sh 150
#
# Why the group: where Linux groups processes by session (/proc/sys/kernel/sched_autogroup_enabled is 1),
# nice ranks a process only against its own session. A training started with setsid and nice 10 still
# took a whole core from the session's tests (session 12: the training kept its full speed while the
# test suite ran, and the suite's CPU-bound tests ran at half speed). Its group's nice is what counts.
# Prints the job's process id, which is also its process group's: stop the whole job with `kill -- -PID`
# (a plain `kill PID` would stop only the wrapper shell). The job's output goes to LOG.
set -euo pipefail
usage="usage: background.sh LOG COMMAND [ARGS...]"
log=${1:?$usage}
shift
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
mkdir -p "$(dirname "$log")"
# In the new session's own shell: the group is that session's (an echo redirected by this shell itself). The
# kernel takes one such change every 100 ms from an unprivileged process, so a refused write is tried again.
# shellcheck disable=SC2016
setsid bash -c '
  if [ -w /proc/self/autogroup ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do { echo 10 > /proc/self/autogroup; } 2>/dev/null && break; sleep 0.1; done
    grep -q "nice 10$" /proc/self/autogroup || echo "background.sh: this session'"'"'s scheduling group could not be niced" >&2
  fi
  exec nice -n 10 "$@"' background "$@" > "$log" 2>&1 < /dev/null &
echo $!
