#!/usr/bin/env bash
# Stops the private Slurm that scripts/slurm-up.sh started in DIR: cancels
# every job, waits for an empty queue (a job still running when slurmd stops
# leaves slurmstepd orphans that ignore SIGTERM), then stops slurmd,
# slurmctld and munged by their pid files. Removes DIR with --rm.
#
# Usage: scripts/slurm-down.sh DIR [--rm]
set -uo pipefail

DIR=${1:?usage: slurm-down.sh DIR [--rm]}
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd -P)
export SLURM_CONF=$DIR/etc/slurm.conf
WAIT_S=${SLURM_DOWN_WAIT_S:-60}

pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# Stops the daemons of the pid files together (each takes 1-2 s to shut down):
# SIGTERM, then SIGKILL for any still there after 10 s.
stop_pids() { # pidfile...
  local f pid pids=()
  for f in "$@"; do
    pid=$(pid_of "$f") || continue
    alive "$pid" && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for _ in $(seq 100); do
    local left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then
      echo "slurm-down: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60) ($pid) did not stop on SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  done
}

ctld=$(pid_of "$DIR/run/slurmctld.pid")
if [ -f "$SLURM_CONF" ] && alive "$ctld"; then
  scancel --full --quiet --partition=debug 2>/dev/null
  scancel --quiet --user=root 2>/dev/null
  left=
  for _ in $(seq $((WAIT_S * 5))); do
    left=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    [ -z "${left// /}" ] && break
    sleep 0.2
  done
  [ -n "${left// /}" ] && echo "slurm-down: jobs still in the queue after ${WAIT_S}s: $left" >&2
fi

# slurmd and slurmctld together, munged (their authentication) after them.
stop_pids "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid"
stop_pids "$DIR/run/munged.pid"
# slurmstepd of this instance that outlived its slurmd (they carry its spool dir).
for p in $(pgrep -x slurmstepd 2>/dev/null); do
  if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF" || grep -q "$DIR/spool" "/proc/$p/cmdline" 2>/dev/null; then
    echo "slurm-down: slurmstepd $p outlived slurmd: SIGKILL" >&2
    kill -KILL "$p" 2>/dev/null
  fi
done
[ "${2:-}" = --rm ] && rm -rf "$DIR"
exit 0
