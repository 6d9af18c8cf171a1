#!/usr/bin/env bash
# local-cluster.sh - a real Slurm on loopback for tests: munged, slurmctld and 3 slurmd (-N node1..3,
# one port each) on this machine, as root, with every file (config, key, state, logs) in one folder.
# Never touches /etc/slurm or /etc/munge: a real cluster's configuration is left alone.
# Usage: scripts/slurm/local-cluster.sh start|stop|status [DIR]   (DIR default /tmp/kiln-slurm)
# After start: `. DIR/env.sh` sets SLURM_CONF (and the munge socket) for sbatch, scontrol and kiln.
# Needs Debian's slurmctld, slurmd, slurm-client and munge (scripts/bootstrap.sh installs them).
set -euo pipefail

action=${1:-}
dir=${2:-/tmp/kiln-slurm}
nodes=(node1 node2 node3)
# Ports away from Slurm's defaults (6817/6818), so a real slurmd on this machine keeps its own.
ctld_port=${KILN_SLURM_PORT:-16817}

die() { echo "local-cluster: $*" >&2; exit 2; }

pids() { cat "$dir"/run/*.pid 2>/dev/null || true; }

stop() {
  [[ -d $dir ]] || return 0
  # Each daemon by the pid it wrote; never by name, so another cluster's daemons on this machine live on.
  local p
  for p in $(pids); do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in $(pids); do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in $(pids); do kill -9 "$p" 2>/dev/null || true; done
  rm -f "$dir"/run/*.pid
}

start() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (slurmd runs jobs as their users)"
  for tool in munged slurmctld slurmd scontrol sbatch; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null 2>&1 \
      || die "$tool not found: install slurmctld slurmd slurm-client munge (scripts/bootstrap.sh)"
  done
  export PATH=$PATH:/usr/sbin
  stop
  rm -rf "$dir"
  mkdir -p "$dir"/{run,log,state,spool,munge}
  chmod 0755 "$dir"
  chmod 0700 "$dir"/munge

  # munge: a key of our own and a socket in the folder.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
    || die "munged did not start: $(tail -3 "$dir/log/munged.log" 2>/dev/null)"

  local cpus mem
  cpus=1
  mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 / 8 ))
  {
    echo "# written by scripts/slurm/local-cluster.sh: a test cluster on loopback"
    echo "ClusterName=kilntest"
    echo "SlurmctldHost=localhost"
    echo "SlurmctldPort=$ctld_port"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    echo "AuthInfo=socket=$dir/munge/munge.socket"
    echo "StateSaveLocation=$dir/state"
    echo "SlurmdSpoolDir=$dir/spool/%n"
    echo "SlurmctldPidFile=$dir/run/slurmctld.pid"
    echo "SlurmdPidFile=$dir/run/slurmd-%n.pid"
    echo "SlurmctldLogFile=$dir/log/slurmctld.log"
    echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "SchedulerType=sched/backfill"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "SlurmdParameters=config_overrides"
    echo "SlurmdTimeout=60"
    echo "InactiveLimit=0"
    echo "KillWait=5"
    echo "MinJobAge=30"
    echo "SlurmctldDebug=info"
    echo "SlurmdDebug=info"
    local i=0
    for n in "${nodes[@]}"; do
      i=$((i + 1))
      echo "NodeName=$n NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((ctld_port + i)) CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=kiln Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
  } > "$dir/slurm.conf"
  printf 'export SLURM_CONF=%q\nexport PATH=$PATH:/usr/sbin\n' "$dir/slurm.conf" > "$dir/env.sh"
  export SLURM_CONF=$dir/slurm.conf

  slurmctld -f "$SLURM_CONF" -i || die "slurmctld did not start: $(tail -5 "$dir/log/slurmctld.log" 2>/dev/null)"
  for n in "${nodes[@]}"; do
    mkdir -p "$dir/spool/$n"
    slurmd -f "$SLURM_CONF" -N "$n" || die "slurmd -N $n did not start: $(tail -5 "$dir/log/slurmd-$n.log" 2>/dev/null)"
  done

  # Up when every node answers idle.
  for _ in $(seq 120); do
    local idle
    idle=$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 == "idle"' | wc -l)
    if [[ $idle -eq ${#nodes[@]} ]]; then
      echo "local-cluster: up in $dir (SLURM_CONF=$SLURM_CONF): ${nodes[*]} idle"
      return 0
    fi
    sleep 0.5
  done
  sinfo -N -l >&2 || true
  tail -5 "$dir/log/slurmctld.log" >&2 || true
  die "nodes did not come up idle within 60 s (logs in $dir/log)"
}

case "$action" in
  start) start ;;
  stop) stop; echo "local-cluster: stopped ($dir)" ;;
  status) SLURM_CONF=$dir/slurm.conf sinfo -N -o '%N %T %E' ;;
  *) die "usage: local-cluster.sh start|stop|status [DIR]" ;;
esac
