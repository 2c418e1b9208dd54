#!/usr/bin/env bash
# `npm test`: does its own set-up on a fresh machine, then builds, typechecks
# and runs every workspace's tests and the end-to-end tests.
#  - Debian packages the tests need (chromium: report rendering and the dashboard page; python3-h5py:
#    the interop fixtures another HDF5 writer writes; python3-scipy: the
#    example's whitening compared with ours; slurm-wlm and munge: the Slurm
#    test brings up a private single-node Slurm, as root only; redis-server:
#    a private Redis when none answers), installed where this user can (root
#    or sudo);
#    where it can't, it says exactly what to install and goes on (the tests
#    that need the missing piece then fail with the same instruction);
#  - a Redis: REDIS_URL, else 127.0.0.1:6379, else a private redis-server on a
#    free port, stopped at the end.
# Extra arguments go to vitest (e.g. `npm test -- packages/stats`).
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1

missing=()
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
has_module() { for py in python3 /usr/bin/python3; do "$py" -c "import $1" 2>/dev/null && return 0; done; return 1; }
has_module "h5py, numpy" || missing+=(python3-h5py)
has_module "numpy, scipy" || missing+=(python3-scipy)
# test/slurm.test.ts runs daemons that start jobs as their owners: root only
# (elsewhere it is skipped, saying why), so only root installs them.
if [ "$(id -u)" = 0 ]; then
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null || missing+=(slurm-wlm)
  command -v munged >/dev/null || missing+=(munge)
fi
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && as_root=(sudo -n); } || true
  if [ "$(id -u)" = 0 ] || [ ${#as_root[@]} -gt 0 ]; then
    echo "test: installing Debian packages: ${missing[*]}" >&2
    ("${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2 \
      || echo "test: could not install ${missing[*]}: run 'apt-get install -y ${missing[*]}' as root; the tests that need them will fail" >&2
  else
    echo "test: missing ${missing[*]} and not root: run 'sudo apt-get install -y ${missing[*]}'; the tests that need them will fail" >&2
  fi
fi

# shellcheck source=ensure-redis.sh
source scripts/ensure-redis.sh
stop_private_redis() {
  if [ -n "${TIMESLIDE_PRIVATE_REDIS_PID_FILE:-}" ] && [ -f "$TIMESLIDE_PRIVATE_REDIS_PID_FILE" ]; then
    kill "$(cat "$TIMESLIDE_PRIVATE_REDIS_PID_FILE")" 2>/dev/null || true
  fi
}
trap stop_private_redis EXIT

npx turbo run build --output-logs=errors-only
npx tsc --noEmit -p tsconfig.json
npx vitest run "$@"
