#!/usr/bin/env bash
# Starts NVIDIA Triton Inference Server in Apptainer/Singularity on a model
# repository written by `timeslide model-repo`, and next to it the
# `timeslide register` sidecar, which puts this server in the Redis registry
# while it is ready so that workers started with `--servers registry` find it.
#
# Usage: start-triton.sh [MODEL_REPOSITORY]     (or TRITON_MODEL_REPO=...)
#
# Settings (environment):
#   TRITON_MODEL_REPO       model repository (absolute path, shared filesystem)
#   TRITON_IMAGE            a .sif file or a docker:// URI
#                           (default docker://nvcr.io/nvidia/tritonserver:24.08-py3;
#                           pull it once to a .sif on shared storage, see deploy/README.md)
#   TRITON_GRPC_PORT        gRPC port (default: the first free port from 8001)
#   TRITON_METRICS_PORT     Prometheus metrics port (default: the first free port from 8002)
#   TRITON_MODEL_CONTROL    none | poll | explicit (default none: load every model at start)
#   TRITON_EXTRA_ARGS       more tritonserver flags, space-separated
#   APPTAINER               apptainer or singularity binary (default: whichever is installed)
#   TIMESLIDE_BIN           how to run timeslide (default `timeslide`), e.g.
#                           "/shared/node-v20/bin/node /shared/timeslide/apps/cli/dist/main.js"
#   TIMESLIDE_MODEL         model that must be ready before registering (default detector-stream)
#   TIMESLIDE_ADVERTISE_HOST  host name workers dial (default: hostname -f)
#   TIMESLIDE_REGISTER_TTL  registry lease in seconds (default 15)
#   TIMESLIDE_DRAIN_S       seconds between leaving the registry and stopping Triton (default 10)
#   REDIS_URL or REDIS_URL_FILE   the queue's Redis (a file keeps a password out of job ads)
#   TIMESLIDE_PREFIX        Redis key prefix shared with the workers (default timeslide)
#   DRY_RUN=1               print the commands and exit
set -euo pipefail

log() { printf '%s start-triton: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

REPO=${1:-${TRITON_MODEL_REPO:-}}
[[ -n $REPO ]] || die "no model repository: pass it as the first argument or set TRITON_MODEL_REPO (write one with: timeslide model-repo --out DIR --device gpu)"
[[ -d $REPO ]] || die "model repository $REPO: not a directory"
REPO=$(cd "$REPO" && pwd -P)
MODEL=${TIMESLIDE_MODEL:-detector-stream}
[[ -f $REPO/$MODEL/config.pbtxt ]] || die "model repository $REPO has no $MODEL/config.pbtxt (written by timeslide model-repo?)"

IMAGE=${TRITON_IMAGE:-docker://nvcr.io/nvidia/tritonserver:24.08-py3}
CONTROL=${TRITON_MODEL_CONTROL:-none}
case $CONTROL in none | poll | explicit) ;; *) die "TRITON_MODEL_CONTROL=$CONTROL: expected none, poll or explicit" ;; esac
TTL=${TIMESLIDE_REGISTER_TTL:-15}
DRAIN=${TIMESLIDE_DRAIN_S:-10}
[[ $TTL =~ ^[0-9]+$ && $TTL -ge 1 ]] || die "TIMESLIDE_REGISTER_TTL=$TTL: expected whole seconds >= 1"
[[ $DRAIN =~ ^[0-9]+$ ]] || die "TIMESLIDE_DRAIN_S=$DRAIN: expected whole seconds"

if [[ -z ${APPTAINER:-} ]]; then
  APPTAINER=$(command -v apptainer || command -v singularity || true)
  [[ -n $APPTAINER || ${DRY_RUN:-0} == 1 ]] || die "neither apptainer nor singularity is on PATH (set APPTAINER)"
  APPTAINER=${APPTAINER:-apptainer}
fi
read -r -a TIMESLIDE <<<"${TIMESLIDE_BIN:-timeslide}"
command -v "${TIMESLIDE[0]}" >/dev/null || [[ ${DRY_RUN:-0} == 1 ]] || die "${TIMESLIDE[0]}: not found (set TIMESLIDE_BIN)"

# The password stays out of the job ad and the environment listing: read it from a file.
if [[ -z ${REDIS_URL:-} && -n ${REDIS_URL_FILE:-} ]]; then
  [[ -r $REDIS_URL_FILE ]] || die "REDIS_URL_FILE=$REDIS_URL_FILE: not readable"
  if [[ $(stat -c %a "$REDIS_URL_FILE") =~ [1-7]$ ]]; then log "warning: $REDIS_URL_FILE is readable by others (chmod 600 it)"; fi
  REDIS_URL=$(head -n 1 "$REDIS_URL_FILE")
fi
[[ -n ${REDIS_URL:-} ]] || die "no Redis: set REDIS_URL or REDIS_URL_FILE (the workers' Redis)"
export REDIS_URL

# A port nobody on this host listens on (several Triton jobs may share a node).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p=$1
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}
GRPC_PORT=${TRITON_GRPC_PORT:-$(pick_port 8001)}
METRICS_PORT=${TRITON_METRICS_PORT:-$(pick_port $((GRPC_PORT + 1)))}
ADVERTISE_HOST=${TIMESLIDE_ADVERTISE_HOST:-$(hostname -f 2>/dev/null || hostname)}

TRITON_ARGS=(
  tritonserver
  --model-repository=/models
  --model-control-mode="$CONTROL"
  --grpc-port="$GRPC_PORT"
  --allow-http=false
  --metrics-port="$METRICS_PORT"
  --strict-readiness=true
  --exit-timeout-secs=30
)
[[ $CONTROL == explicit ]] && TRITON_ARGS+=(--load-model="$MODEL")
[[ $CONTROL == poll ]] && TRITON_ARGS+=(--repository-poll-secs=30)
if [[ -n ${TRITON_EXTRA_ARGS:-} ]]; then
  read -r -a extra <<<"$TRITON_EXTRA_ARGS"
  TRITON_ARGS+=("${extra[@]}")
fi
# --cleanenv: nothing of the job's environment (REDIS_URL included) enters
# the container; only the GPU assignment HTCondor made is passed on.
CONTAINER=("$APPTAINER" exec --nv --cleanenv --bind "$REPO:/models:ro")
[[ -n ${CUDA_VISIBLE_DEVICES:-} ]] && CONTAINER+=(--env "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES")
CONTAINER+=("$IMAGE" "${TRITON_ARGS[@]}")
REGISTER=("${TIMESLIDE[@]}" register --endpoint "127.0.0.1:$GRPC_PORT" --advertise "$ADVERTISE_HOST:$GRPC_PORT" --ttl "$TTL" --model "$MODEL")

if [[ ${DRY_RUN:-0} == 1 ]]; then
  printf '%q ' "${CONTAINER[@]}"
  echo
  printf '%q ' "${REGISTER[@]}"
  echo
  exit 0
fi

log "Triton on $ADVERTISE_HOST: gRPC $GRPC_PORT, metrics $METRICS_PORT, repository $REPO, image $IMAGE, model control $CONTROL"
"${CONTAINER[@]}" &
triton_pid=$!
sidecar_pid=
stopping=0
sleeper=

start_sidecar() {
  "${REGISTER[@]}" &
  sidecar_pid=$!
}

shutdown() {
  [[ $stopping == 1 ]] && return
  stopping=1
  log "stopping: leaving the registry, draining ${DRAIN}s, then stopping Triton"
  [[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null || true
  if [[ -n $sidecar_pid ]] && kill -0 "$sidecar_pid" 2>/dev/null; then
    kill -TERM "$sidecar_pid" 2>/dev/null || true
    wait "$sidecar_pid" 2>/dev/null || true
  fi
  # Workers stop picking this server at their next discovery; sequences
  # still open here fail over to another server.
  sleep "$DRAIN"
  kill -TERM "$triton_pid" 2>/dev/null || true
  wait "$triton_pid" 2>/dev/null || true
  log "stopped"
  exit 0
}
trap shutdown TERM INT

start_sidecar
# Supervise: the sidecar is restarted if it dies (e.g. Redis unreachable at
# start); when Triton exits, the job ends with Triton's exit status.
while kill -0 "$triton_pid" 2>/dev/null; do
  if ! kill -0 "$sidecar_pid" 2>/dev/null; then
    wait "$sidecar_pid" 2>/dev/null && rc=0 || rc=$?
    log "register sidecar exited ($rc); restarting it in 10 s"
    sleep 10 &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=
    kill -0 "$triton_pid" 2>/dev/null && start_sidecar
  fi
  sleep 2 &
  sleeper=$!
  wait "$sleeper" || true
  sleeper=
done
wait "$triton_pid" && rc=0 || rc=$?
log "Triton exited ($rc)"
if kill -0 "$sidecar_pid" 2>/dev/null; then
  kill -TERM "$sidecar_pid" 2>/dev/null || true
  wait "$sidecar_pid" 2>/dev/null || true
fi
exit "$rc"
