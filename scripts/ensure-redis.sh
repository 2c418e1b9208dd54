#!/usr/bin/env bash
# Source this file: it exports REDIS_URL pointing at a Redis that answers.
# Order: REDIS_URL if set and answering, else 127.0.0.1:6379, else a private
# redis-server on a free port (installed from Debian's packages if missing).
redis_answers() { # host port
  timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && printf 'PING\r\n' >&3 && head -n 1 <&3" 2>/dev/null | grep -q -E 'PONG|NOAUTH'
}
if [ -n "${REDIS_URL:-}" ]; then
  hostport=${REDIS_URL#*://}; hostport=${hostport##*@}; hostport=${hostport%%/*}
  if [[ "$REDIS_URL" == rediss://* ]] || redis_answers "${hostport%%:*}" "${hostport##*:}"; then
    echo "redis: using REDIS_URL" >&2
    return 0 2>/dev/null || exit 0
  fi
  echo "redis: REDIS_URL=$REDIS_URL does not answer; looking for another" >&2
fi
if redis_answers 127.0.0.1 6379; then
  export REDIS_URL=redis://127.0.0.1:6379
  echo "redis: using 127.0.0.1:6379" >&2
  return 0 2>/dev/null || exit 0
fi
if ! command -v redis-server >/dev/null; then
  echo "redis: no server answers and redis-server is not installed; installing it from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2 || true
  else
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2 || true
  fi
fi
if ! command -v redis-server >/dev/null; then
  echo "redis: none can be had. Install one (apt-get install redis-server) or set REDIS_URL=redis://host:port" >&2
  return 1 2>/dev/null || exit 1
fi
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
dir=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
  --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
for _ in $(seq 50); do redis_answers 127.0.0.1 "$port" && break; sleep 0.1; done
export REDIS_URL=redis://127.0.0.1:$port
export TIMESLIDE_PRIVATE_REDIS_PID_FILE=$dir/redis.pid
echo "redis: started a private redis-server on 127.0.0.1:$port" >&2
