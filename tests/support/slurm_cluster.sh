#!/usr/bin/env bash
# A real one-node SLURM cluster for tests, started as root without systemd (the recipe and its
# pitfalls: SLURM_NOTES.md in the shared folder, summarised in README "Tests"):
#
#   slurm_cluster.sh start DIR CTLD_PORT SLURMD_PORT [CPUS]   # prints SLURM_CONF=DIR/slurm.conf
#   slurm_cluster.sh stop DIR                                 # ends jobs, steps and daemons by pid
#
# Everything lives under DIR: munge's key, socket and logs, SLURM's state, spool, pid and log
# files, and the jobcomp file (one line per finished job, no slurmdbd). Clients need only
# SLURM_CONF=DIR/slurm.conf in their environment.
set -euo pipefail

cmd=${1:?start|stop}
dir=$(realpath -m "${2:?scratch folder}")
conf="$dir/slurm.conf"
export SLURM_CONF="$conf"

pid_of() { [ -f "$1" ] && cat "$1" 2> /dev/null || true; }

stop() {
  # Jobs first, while slurmd can still list their processes: if slurmd dies first, its jobs keep
  # running, so every step's pids are collected and ended by pid as well.
  local pids=""
  if [ -f "$dir/run/slurmd.pid" ]; then
    scancel --quiet --full --state=RUNNING --user=root 2> /dev/null || true
    scancel --quiet --user=root 2> /dev/null || true
    pids=$(timeout 5 scontrol listpids 2> /dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}' || true)
  fi
  for f in "$dir/run/slurmctld.pid" "$dir/run/slurmd.pid" "$dir/munge/munged.pid"; do
    local p
    p=$(pid_of "$f")
    [ -n "$p" ] && kill "$p" 2> /dev/null || true
  done
  for p in $pids; do kill -9 "$p" 2> /dev/null || true; done
  # Each daemon ends within a few seconds of SIGTERM; whatever is left gets SIGKILL.
  for f in "$dir/run/slurmctld.pid" "$dir/run/slurmd.pid" "$dir/munge/munged.pid"; do
    local p
    p=$(pid_of "$f")
    [ -z "$p" ] && continue
    for _ in $(seq 50); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$p" 2> /dev/null || true
  done
}

start() {
  local ctld_port=${3:?slurmctld port} slurmd_port=${4:?slurmd port} cpus=${5:-4}
  command -v slurmctld > /dev/null || { echo "slurmctld is not installed (apt-get install slurm-wlm munge)"; exit 77; }
  mkdir -p "$dir"/{munge,state,spool,run,log}
  chmod 700 "$dir/munge"
  # munged insists on private key, socket folder and log files.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket.2" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
  local host mem
  host=$(hostname -s)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=$((mem * 95 / 100))
  # Preemption as many sites configure it: a job of the higher-tier partition "urgent" cancels
  # (PreemptMode=CANCEL, no requeue) the jobs of "debug" it needs the CPUs of.
  # cred_expire: how long a requeued job waits before it may start again (default 120 s), and a
  # step credential's lifetime; 10 s is plenty on one node.
  cat > "$conf" << EOF
ClusterName=jepatest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket.2,cred_expire=10
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
SwitchType=switch/none
ReturnToService=1
SlurmdParameters=config_overrides
MinJobAge=600
KillWait=5
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=2
EOF
  # Not under nice: jobs would inherit it.
  slurmctld -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 150); do
    if sinfo -h -o '%T' 2> /dev/null | grep -qx 'idle'; then
      echo "SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.1
  done
  echo "the test cluster did not come up: $(sinfo -h 2>&1 | head -3)" >&2
  tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  stop
  exit 1
}

case "$cmd" in
  start) start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start DIR CTLD_PORT SLURMD_PORT [CPUS] | stop DIR" >&2; exit 2 ;;
esac
