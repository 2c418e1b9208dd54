#!/usr/bin/env bash
# HTCondor job wrapper for one timeslide worker (see worker.sub).
#
# Arguments are passed to `timeslide worker` (campaign names, --concurrency, ...).
# Settings (environment, from the submit file):
#   REDIS_URL or REDIS_URL_FILE   the queue's Redis; a file (mode 600 on the shared
#                                 filesystem) keeps a password out of the job ad
#   TIMESLIDE_PREFIX              Redis key prefix of the campaigns (default timeslide)
#   TIMESLIDE_SERVERS             inference servers: "registry" (found through Redis,
#                                 the default here) or "host:port,host:port"
#   TIMESLIDE_BIN                 how to run timeslide (default `timeslide`), e.g.
#                                 "/shared/node-v20/bin/node /shared/timeslide/apps/cli/dist/main.js"
#
# The worker runs until HTCondor sends SIGTERM (condor_rm, vacate, preemption):
# running jobs get --grace seconds to finish, the rest go back to the queue
# and another worker picks them up. Exit 0 then; anything else is retried.
set -euo pipefail

log() { printf '%s timeslide-worker: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -z ${REDIS_URL:-} && -n ${REDIS_URL_FILE:-} ]]; then
  [[ -r $REDIS_URL_FILE ]] || die "REDIS_URL_FILE=$REDIS_URL_FILE: not readable from $(hostname)"
  if [[ $(stat -c %a "$REDIS_URL_FILE") =~ [1-7]$ ]]; then log "warning: $REDIS_URL_FILE is readable by others (chmod 600 it)"; fi
  REDIS_URL=$(head -n 1 "$REDIS_URL_FILE")
fi
[[ -n ${REDIS_URL:-} ]] || die "no Redis: set REDIS_URL or REDIS_URL_FILE in the submit file's environment"
export REDIS_URL

read -r -a TIMESLIDE <<<"${TIMESLIDE_BIN:-timeslide}"
command -v "${TIMESLIDE[0]}" >/dev/null || die "${TIMESLIDE[0]}: not found on $(hostname) (set TIMESLIDE_BIN; Node >= 20 is needed)"

# Each worker names itself after the HTCondor job, so failures and metrics
# point back at the job and its log.
export TIMESLIDE_WORKER_NAME="${TIMESLIDE_WORKER_NAME:-$(hostname):condor-${CLUSTER:-0}.${PROCESS:-0}}"
log "worker ${TIMESLIDE_WORKER_NAME} on $(hostname), prefix ${TIMESLIDE_PREFIX:-timeslide}, servers ${TIMESLIDE_SERVERS:-registry}"

# exec: the worker itself receives HTCondor's kill signal.
exec "${TIMESLIDE[@]}" worker --servers "${TIMESLIDE_SERVERS:-registry}" "$@"
