# Shared by the Slurm batch scripts in this folder (sourced, not run).
#
# sbatch copies a batch script into slurmd's spool directory before running
# it, so the scripts find this file (and timeslide) through TIMESLIDE_HOME:
# the timeslide checkout on the shared filesystem. Default: two levels above
# the directory sbatch was run from, i.e. submit from deploy/slurm.
#
# What it provides:
#   ts_setup           checks TIMESLIDE_HOME and TIMESLIDE_BIN, loads REDIS_URL
#                      (from REDIS_URL_FILE when set: keeps the password out of
#                      `scontrol show job` and the job's environment listing)
#   ts_supervise CMD   runs CMD as a child; SIGTERM / SIGINT of the batch shell
#                      (--signal=B:TERM@120 before the time limit, `scancel
#                      --batch --signal=TERM`, `scancel`) is passed on to it;
#                      a non-zero exit that nobody asked for is restarted up to
#                      TIMESLIDE_MAX_RESTARTS times (HTCondor's max_retries);
#                      when the signal came near the time limit and the job is
#                      still running, the job requeues itself (`scontrol
#                      requeue`) so its slot comes back with a fresh limit.

ts_log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${TS_NAME:-timeslide}" "$*" >&2; }
ts_die() {
  ts_log "error: $*"
  exit 1
}

ts_setup() {
  TIMESLIDE_HOME=${TIMESLIDE_HOME:-${SLURM_SUBMIT_DIR:-$PWD}/../..}
  [[ -f $TIMESLIDE_HOME/deploy/slurm/common.sh ]] || ts_die "TIMESLIDE_HOME=$TIMESLIDE_HOME is not a timeslide checkout (set TIMESLIDE_HOME, or submit from its deploy/slurm)"
  TIMESLIDE_HOME=$(cd "$TIMESLIDE_HOME" && pwd -P)
  export TIMESLIDE_HOME
  read -r -a TIMESLIDE <<<"${TIMESLIDE_BIN:-node $TIMESLIDE_HOME/apps/cli/dist/main.js}"
  command -v "${TIMESLIDE[0]}" >/dev/null || ts_die "${TIMESLIDE[0]}: not found on $(hostname) (set TIMESLIDE_BIN; Node >= 20 is needed)"
  if [[ -z ${REDIS_URL:-} && -n ${REDIS_URL_FILE:-} ]]; then
    [[ -r $REDIS_URL_FILE ]] || ts_die "REDIS_URL_FILE=$REDIS_URL_FILE: not readable from $(hostname)"
    if [[ $(stat -c %a "$REDIS_URL_FILE") =~ [1-7]$ ]]; then ts_log "warning: $REDIS_URL_FILE is readable by others (chmod 600 it)"; fi
    REDIS_URL=$(head -n 1 "$REDIS_URL_FILE")
  fi
  [[ -n ${REDIS_URL:-} ]] || ts_die "no Redis: set REDIS_URL_FILE (a mode-600 file holding the URL) or REDIS_URL"
  export REDIS_URL
}

# The job's "<array job>_<task>" (or its id). Slurm commands must be given
# this, not SLURM_JOB_ID: the array's last task has the array's own id, and
# `scontrol requeue <that id>` requeues every task of the array.
ts_job_name() {
  if [[ -n ${SLURM_ARRAY_JOB_ID:-} ]]; then echo "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; else echo "${SLURM_JOB_ID:-0}"; fi
}

# `scontrol show job` field of this job (empty when Slurm does not answer).
ts_job_field() {
  [[ -n ${SLURM_JOB_ID:-} ]] || return 0
  scontrol show job -o "$(ts_job_name)" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

# True when the job is still RUNNING (not cancelled or requeued by someone)
# and its time limit ends within TIMESLIDE_REQUEUE_WITHIN_S seconds of the
# signal (Slurm may send --signal up to 60 s early).
ts_near_time_limit() {
  local state end end_s
  state=$(ts_job_field JobState)
  [[ $state == RUNNING ]] || return 1
  end=$(ts_job_field EndTime)
  [[ -n $end && $end != Unknown && $end != None ]] || return 1
  end_s=$(date -d "$end" +%s 2>/dev/null) || return 1
  ((end_s - TS_SIGNAL_AT <= ${TIMESLIDE_REQUEUE_WITHIN_S:-300}))
}

ts_supervise() {
  local restarts=0 max=${TIMESLIDE_MAX_RESTARTS:-5} rc=0
  TS_CHILD=
  TS_STOPPING=0
  TS_SIGNAL_AT=0
  ts_on_signal() {
    [[ $TS_STOPPING == 1 ]] && return
    TS_STOPPING=1
    TS_SIGNAL_AT=$(date +%s)
    ts_log "$1: stopping (running work is finished or handed back)"
    [[ -n $TS_CHILD ]] && kill -TERM "$TS_CHILD" 2>/dev/null
    return 0
  }
  trap 'ts_on_signal SIGTERM' TERM
  trap 'ts_on_signal SIGINT' INT
  while :; do
    "$@" &
    TS_CHILD=$!
    # `wait` returns early when a trapped signal arrives: wait until the child is gone.
    while :; do
      wait "$TS_CHILD" && rc=0 || rc=$?
      kill -0 "$TS_CHILD" 2>/dev/null || break
    done
    TS_CHILD=
    [[ $TS_STOPPING == 1 || $rc == 0 ]] && break
    restarts=$((restarts + 1))
    if ((restarts > max)); then
      ts_log "exited $rc, $max restarts used: giving up"
      exit "$rc"
    fi
    ts_log "exited $rc: restarting in ${TIMESLIDE_RESTART_DELAY_S:-10} s ($restarts of $max)"
    sleep "${TIMESLIDE_RESTART_DELAY_S:-10}" &
    wait $! || true
    [[ $TS_STOPPING == 1 ]] && break
  done
  if [[ $TS_STOPPING == 1 && ${TIMESLIDE_REQUEUE:-1} == 1 && -n ${SLURM_JOB_ID:-} ]] && ts_near_time_limit; then
    ts_log "stopped before the time limit: requeueing job $(ts_job_name) (restart $((${SLURM_RESTART_COUNT:-0} + 1)))"
    if scontrol requeue "$(ts_job_name)"; then
      sleep 30 & # Slurm ends this script when it requeues the job
      wait $! || true
    else
      ts_log "scontrol requeue failed (was the job submitted with --requeue?)"
    fi
  fi
  ts_log "exit $rc"
  exit "$rc"
}
