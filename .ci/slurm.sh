#!/usr/bin/env bash
# Bring up a real one-node SLURM (munge, slurmctld, slurmd) on this host for CI.
# Run as root. Idempotent: healthy daemons are left alone, stale or dead ones are restarted.
# Usage: .ci/slurm.sh            -> prints the partition name and its sinfo line at the end.
set -euo pipefail

PARTITION=debug
CONF=/etc/slurm/slurm.conf
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
UP_TIMEOUT_S=60
HOST=$(hostname -s)

die() {
    echo "slurm.sh: SLURM could not be brought up: $*" >&2
    for log in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
        [[ -f $log ]] && { echo "--- tail $log" >&2; tail -n 15 "$log" >&2; }
    done
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"

install_packages() {
    local missing=()
    for pkg in slurmctld slurmd slurm-client munge; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "slurm.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed"
}

# The pid file is only trusted if it names a live process with the expected command name,
# so a recycled pid never gets killed.
pid_of() {
    local name=$1 pidfile=$2 pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null || true) == "$name" ]]; then
        echo "$pid"
        return 0
    fi
    pgrep -x "$name" | head -n 1
}

stop_daemon() {
    local name=$1 pidfile=$2 pid
    while pid=$(pid_of "$name" "$pidfile") && [[ -n $pid ]]; do
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
        if [[ -d /proc/$pid ]]; then kill -9 "$pid" 2>/dev/null || true; fi
        sleep 0.1
    done
    rm -f "$pidfile"
}

munge_healthy() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    munge_healthy && return 0
    stop_daemon munged "$MUNGE_PID"
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge_healthy && return 0; sleep 0.1; done
    die "munge does not answer (see /var/log/munge/munged.log)"
}

# Prints the slurm.conf for this host; CPUs and topology come from slurmd's own probe.
render_conf() {
    local probe cpus sockets cores threads mem_mb
    probe=$(slurmd -C | head -n 1)
    cpus=$(grep -oP '(?<=CPUs=)\d+' <<<"$probe")
    sockets=$(grep -oP '(?<=SocketsPerBoard=)\d+' <<<"$probe")
    cores=$(grep -oP '(?<=CoresPerSocket=)\d+' <<<"$probe")
    threads=$(grep -oP '(?<=ThreadsPerCore=)\d+' <<<"$probe")
    mem_mb=$(grep -oP '(?<=RealMemory=)\d+' <<<"$probe")
    # A node that reports less memory than configured is drained, so stay below the probe.
    mem_mb=$((mem_mb * 95 / 100))
    cat <<EOF
# Written by .ci/slurm.sh for a one-node CI cluster; edits are overwritten.
ClusterName=ci
# The address is given so that clients need no name resolution for this host.
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire seconds (default 120) before it may start again.
AuthInfo=cred_expire=10
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
# No cgroups in this container: track processes by parentage and bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Requeued and new jobs should start within seconds, not at the default 60 s pass.
SchedulerParameters=sched_interval=2,bf_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# submitit requeues preempted or timed-out jobs with "scontrol requeue".
JobRequeue=1
# Reject jobs that can never fit this node at submit time instead of leaving them pending forever.
EnforcePartLimits=ALL
ReturnToService=2
SlurmdTimeout=30
SlurmctldTimeout=30
# An srun whose controller state was lost (kill -9) would otherwise hold its cores forever.
InactiveLimit=20
KillWait=5
MinJobAge=60
Waittime=0
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem_mb State=UNKNOWN
# Jobs share cores (OverSubscribe=FORCE) because tests run several 2-task array jobs on 2 cores.
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
}

node_state() { sinfo -h -N -n "$HOST" -p "$PARTITION" -o '%T' 2>/dev/null | head -n 1; }

slurm_healthy() {
    [[ -n $(pid_of slurmctld "$CTLD_PID") && -n $(pid_of slurmd "$SLURMD_PID") ]] || return 1
    scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
    [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]
}

start_slurm() {
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$CTLD_PID"
    install -d -m 0755 "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
    slurmctld || die "slurmctld did not start"
    slurmd || die "slurmd did not start"
}

wait_node_up() {
    local deadline=$((SECONDS + UP_TIMEOUT_S)) state
    while ((SECONDS < deadline)); do
        state=$(node_state)
        # A drained or down node from an earlier run does not come back by itself.
        if [[ $state == drain* || $state == down* ]]; then
            scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
        fi
        [[ $state =~ ^(idle|mixed|allocated)$ ]] && return 0
        sleep 1
    done
    die "node $HOST is '${state:-unknown}' after ${UP_TIMEOUT_S}s"
}

smoke_check() {
    local out
    out=$(timeout 60 srun -N1 -n2 -p "$PARTITION" hostname 2>&1) || die "srun failed: $out"
    [[ $(grep -cx "$HOST" <<<"$out") -eq 2 ]] || die "srun -n2 did not run 2 tasks: $out"
    out=$(timeout 60 sbatch --wait --parsable -p "$PARTITION" -o /dev/null --wrap true 2>&1) \
        || die "sbatch --wrap job did not finish: $out"
}

main() {
    local started=$SECONDS new_conf
    install_packages
    start_munge
    new_conf=$(render_conf)
    if [[ -f $CONF && $(cat "$CONF") == "$new_conf" ]] && slurm_healthy; then
        echo "slurm.sh: already running and healthy"
    else
        install -d -m 0755 "$(dirname "$CONF")"
        printf '%s\n' "$new_conf" >"$CONF"
        start_slurm
        wait_node_up
        echo "slurm.sh: daemons up after $((SECONDS - started))s"
    fi
    smoke_check
    echo "slurm.sh: partition=$PARTITION"
    sinfo -p "$PARTITION" -o '%P %a %l %D %T %N %C'
}

main "$@"
