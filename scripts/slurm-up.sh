#!/usr/bin/env bash
# Brings up a private single-node Slurm in DIR (for the Slurm test, or to try
# deploy/slurm on one machine): its own munge key and socket, slurm.conf,
# state, spool and log directories, and ports; nothing under /etc or /run is
# used or changed. Needs root (slurmd starts jobs as their users) and
# Debian's slurm-wlm and munge (apt-get install -y slurm-wlm munge).
#
# Usage: scripts/slurm-up.sh DIR        then: export SLURM_CONF=DIR/etc/slurm.conf
#        scripts/slurm-down.sh DIR      cancels every job, stops the daemons
#
# On success it prints SLURM_CONF=... on stdout (and writes DIR/env); on
# failure it says why on stderr, stops what it started and exits 1.
# Settings (environment): SLURM_OVERSUBSCRIBE (jobs per core, default 4: a
# test runs a server and several workers on a 2-core machine).
set -euo pipefail

DIR=${1:?usage: slurm-up.sh DIR}
fail() {
  echo "slurm-up: $*" >&2
  "$(dirname "$0")/slurm-down.sh" "$DIR" >/dev/null 2>&1 || true
  exit 1
}
[ "$(id -u)" = 0 ] || { echo "slurm-up: needs root (slurmd runs jobs as their owners); run as root" >&2; exit 1; }
for b in munged mungekey slurmctld slurmd sbatch squeue scontrol scancel; do
  command -v "$b" >/dev/null || { echo "slurm-up: $b not found: apt-get install -y slurm-wlm munge" >&2; exit 1; }
done

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
mkdir -p "$DIR"/{etc,munge,state,spool,log,run}
# munged refuses a key or socket directory that others can write.
chmod 700 "$DIR/munge" "$DIR/state" "$DIR/spool"
chmod 755 "$DIR" "$DIR/etc" "$DIR/log" "$DIR/run"

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# munge: a fresh key of our own, our own socket.
SOCK=$DIR/munge/munge.sock
mungekey --create --keyfile="$DIR/munge/munge.key" --force >/dev/null 2>&1 || fail "mungekey could not create a key"
chmod 400 "$DIR/munge/munge.key"
munged --force -S "$SOCK" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/run/munged.pid" \
  --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" 2>"$DIR/log/munged.err" \
  || fail "munged did not start: $(tail -n 3 "$DIR/log/munged.err" "$DIR/log/munged.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "munged did not open its socket $SOCK"

# The node as slurmd sees it (CPUs, boards, sockets, cores, threads, memory).
NODE=$(hostname -s)
TOPO=$(slurmd -C 2>/dev/null | head -n 1 | sed -e 's/^NodeName=[^ ]* //') || true
[ -n "$TOPO" ] || fail "slurmd -C reported no topology"
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
OVER=${SLURM_OVERSUBSCRIBE:-4}

cat >"$DIR/etc/slurm.conf" <<EOF
# Private single-node Slurm written by scripts/slurm-up.sh
ClusterName=timeslide-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=5: a requeued job waits cred_expire + 1 s before it runs again
# (the default 120 s would make it wait two minutes; below 5 is refused).
AuthInfo=socket=$SOCK,cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: processes tracked by parent id, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=1,bf_interval=1
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=300
InactiveLimit=0
Waittime=0
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 $TOPO State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:$OVER
EOF

export SLURM_CONF=$DIR/etc/slurm.conf
slurmctld -f "$SLURM_CONF" -i 2>"$DIR/log/slurmctld.err" || fail "slurmctld did not start: $(tail -n 5 "$DIR/log/slurmctld.err" "$DIR/log/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
slurmd -f "$SLURM_CONF" -N "$NODE" 2>"$DIR/log/slurmd.err" || fail "slurmd did not start: $(tail -n 5 "$DIR/log/slurmd.err" "$DIR/log/slurmd-$NODE.log" 2>/dev/null | tr '\n' ' ')"

# Up when the node is idle (slurmd registered with slurmctld).
state=
for _ in $(seq 100); do
  state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
  case $state in idle*|mix*|alloc*) break ;; esac
  sleep 0.1
done
case $state in idle*|mix*|alloc*) ;; *) fail "the node did not come up (state '${state:-none}'): $(tail -n 5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd-$NODE.log" 2>/dev/null | tr '\n' ' ')" ;; esac

printf 'SLURM_CONF=%s\n' "$SLURM_CONF" | tee "$DIR/env"
