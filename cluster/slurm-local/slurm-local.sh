#!/usr/bin/env bash
# slurm-local.sh - a private single-node Slurm cluster on 127.0.0.1, for glorot's
# integration test (crates/glorot-cli/tests/slurm.rs) and for trying
# cluster/glorot-search.sbatch on one machine before a real cluster.
#
# Usage:
#   slurm-local.sh install
#       Install slurmctld, slurmd, slurm-client and munge from the distribution's
#       packages (apt-get) unless they are already there. No service is started.
#   slurm-local.sh start DIR [-c CPUS] [-t SECS] [-o OWNER_PID]
#       Create DIR (must not exist; its parents must be world-searchable) with a
#       private munge key, slurm.conf and logs; start munged, slurmctld and slurmd
#       under a supervisor and return once the node is idle. Prints SLURM_CONF=...
#       The supervisor stops every daemon it started, by pid, on `stop`, when SECS
#       (default 1800) have passed, when OWNER_PID (if given) exits, or when a
#       daemon dies. CPUS (default: nproc) is the node's CPU count = concurrency.
#   slurm-local.sh stop DIR
#       Cancel every job, wait for job steps to end, then stop slurmd, slurmctld and
#       munged (in that order, TERM then KILL after 10 s). Waits until done.
#   slurm-local.sh exec DIR CMD [ARGS...]
#       Run a Slurm client (sbatch, squeue, scancel, scontrol, sinfo) on DIR's cluster.
#   slurm-local.sh wait DIR JOBID [SECS]
#       Wait (at most SECS, default 600) until every task of array job JOBID has
#       ended; print `task=ID state=STATE exit=CODE` per task, in task order.
#   slurm-local.sh pids DIR JOBID TASK
#       Pids of the processes a running array task started (its batch script and
#       everything below it), found by their Slurm environment.
#   slurm-local.sh run [-c CPUS] [-t SECS] [-k] -- SBATCH_ARGS...
#       All in one: install if needed, start a cluster in a fresh temporary DIR,
#       submit `sbatch SBATCH_ARGS...` (give --array=...), wait, report, stop.
#       -k keeps DIR (config, logs) even on success. Example:
#         sudo cluster/slurm-local/slurm-local.sh run -- --array=0-3 \
#           cluster/glorot-search.sbatch --out /tmp/grid --grid tiny
#
# Exit codes: 0 success | 1 a task or a check failed | 2 usage | 3 setup failed
#             (install, daemons) | 77 cannot run here (not root, or Slurm missing and
#             no apt-get; the test skips on this) | 124 timeout.
#
# What a container needs (and why the config looks the way it does):
# - No systemd, no cgroups: ProctrackType=proctrack/linuxproc (tracks a job's
#   processes through /proc parentage), TaskPlugin=task/none, no accounting daemon
#   (AccountingStorageType=accounting_storage/none; task end states come from
#   JobCompType=jobcomp/filetxt, which `wait` reads), SlurmUser=SlurmdUser=root.
# - Daemons run in the foreground (-D, munged -F) as the supervisor's children, so
#   their pids are exact and nothing depends on pid files.
# - Loopback only: every address in slurm.conf is 127.0.0.1; when this host's name
#   resolves to a loopback address the daemons also bind only there
#   (CommunicationParameters=NoCtldInAddrAny,NoInAddrAny). Two free ports are chosen.
# - munge: a private 1 KiB key (0600, in a 0700 directory) and a private socket;
#   the socket's directory must be 0755 and every parent directory searchable,
#   or clients cannot reach it.
# - SlurmdParameters=config_overrides: the node's CPUs/RealMemory come from this
#   file, not from the hardware, so the node never drains for a mismatch.
# - apt runs with a policy-rc.d that forbids starting services (Debian's postinst
#   would otherwise start the system munge and slurm daemons).
# - Array index offsets: a task sees SLURM_ARRAY_TASK_ID (e.g. 4..7 for
#   --array=4-7), SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_MAX, SLURM_ARRAY_TASK_STEP
#   and SLURM_ARRAY_TASK_COUNT; its 0-based position is (ID - MIN) / STEP.
# - Stop order: cancel jobs, let slurmstepd report and exit, then slurmd,
#   slurmctld, munged; finally any stray process still carrying this cluster's
#   SLURM_CONF in its environment is killed. (slurmstepd daemonizes, so its parent
#   is init: for a moment after `stop` it may show as a zombie until init reaps it.)
# `A && B || C` below always means "C unless both A and B succeed".
# shellcheck disable=SC2015
set -u -o pipefail

PROG=${0##*/}
SELF=$(cd "$(dirname "$0")" && pwd)/${0##*/}

say() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() { local code=$1; shift; say "$*"; exit "$code"; }
usage() { # [EXIT_CODE]: the header's usage part; to stdout for help, else stderr
  local text
  text=$(sed -n '2,/^$/p' "$SELF" | sed -n '/^#/s/^# \{0,1\}//p' | sed '/^What a container needs/,$d')
  if [ "${1:-2}" = 0 ]; then echo "$text"; else echo "$text" >&2; fi
  exit "${1:-2}"
}
is_number() { [[ ${1:-} =~ ^[1-9][0-9]*$ ]]; }

have_slurm() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null
}

need_root() { [ "$(id -u)" = 0 ] || die 77 "needs root (the daemons run as root with a private config)"; }

# ---------------------------------------------------------------------- install
cmd_install() {
  need_root
  if have_slurm; then return 0; fi
  command -v apt-get >/dev/null || die 77 "Slurm is not installed and there is no apt-get to install it"
  say "installing slurmctld slurmd slurm-client munge with apt-get (no services started)"
  local policy='' log
  log=$(mktemp)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# slurm-local.sh: no service starts during this install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update &&
      DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install \
        --no-install-recommends slurmctld slurmd slurm-client munge
  } >"$log" 2>&1 || rc=$?
  [ -n "$policy" ] && rm -f "$policy"
  if [ "$rc" != 0 ]; then
    say "apt-get failed (exit $rc); its last lines:"
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 3
  fi
  rm -f "$log"
  have_slurm || die 3 "apt-get succeeded but the Slurm commands are still missing"
  say "installed $(slurmctld -V 2>/dev/null), $(munged -V 2>/dev/null | head -n 1)"
}

# ------------------------------------------------------------------- helpers
conf_of() { echo "$1/etc/slurm.conf"; }
# A Slurm client call on DIR's cluster, bounded so a dead controller cannot hang us.
sl() { local dir=$1; shift; SLURM_CONF=$(conf_of "$dir") timeout 20 "$@"; }

listening() { # PORT -> success when something listens on it (tcp or tcp6)
  local hex
  hex=$(printf ':%04X ' "$1")
  awk -v h="$hex" '$4 == "0A" && index($2 " ", h) { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Pids (other than this shell and its ancestors) whose environment holds
# SLURM_CONF=CONF, optionally only those whose command name is COMM.
conf_pids() {
  local conf=$1 comm=${2:-} d p skip=" $$ "
  p=$$
  while [ "$p" -gt 1 ] 2>/dev/null; do
    p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || break
    [ -n "$p" ] || break
    skip+="$p "
  done
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case $skip in *" $p "*) continue ;; esac
    if [ -n "$comm" ] && [ "$(cat "$d/comm" 2>/dev/null)" != "$comm" ]; then continue; fi
    { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf" && echo "$p"
  done
}

stop_pid() { # NAME PID: TERM, up to 10 s, then KILL
  local name=$1 pid=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { say "stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  say "$name (pid $pid) ignored TERM for 10 s; sending KILL"
  kill -KILL "$pid" 2>/dev/null
}

# ---------------------------------------------------------------------- start
cmd_start() {
  local dir=${1:-}
  [ -n "$dir" ] && [ "${dir#-}" = "$dir" ] || usage
  shift
  local cpus timeout=1800 owner=''
  cpus=$(nproc 2>/dev/null || echo 1)
  local o OPTIND=1
  while getopts "c:t:o:" o; do
    case $o in
      c) cpus=$OPTARG ;; t) timeout=$OPTARG ;; o) owner=$OPTARG ;; *) usage ;;
    esac
  done
  for v in "$cpus" "$timeout" ${owner:+"$owner"}; do is_number "$v" || die 2 "not a positive number: '$v'"; done
  need_root
  have_slurm || die 77 "Slurm is not installed (run: $PROG install)"
  [ -e "$dir" ] && die 2 "$dir exists; give a new directory"
  mkdir -p "$dir" || die 3 "cannot create $dir"
  dir=$(cd "$dir" && pwd)
  # munged refuses a socket whose directory clients cannot reach.
  local p=$dir
  while [ "$p" != / ]; do
    p=$(dirname "$p")
    [ "$(( 0$(stat -c %a "$p") & 01 ))" != 0 ] ||
      die 3 "$p is not searchable by others (chmod o+x it or start elsewhere): munge needs that"
  done
  chmod 755 "$dir"
  mkdir -p "$dir"/{etc,state,spool,log,munge} && chmod 755 "$dir/munge" &&
    mkdir -m 700 "$dir/key" || die 3 "cannot lay out $dir"
  (umask 077 && dd if=/dev/urandom of="$dir/key/munge.key" bs=1024 count=1 status=none) ||
    die 3 "cannot write the munge key"

  local port=${SLURM_LOCAL_PORT:-6817}
  while listening "$port" || listening $((port + 1)); do
    port=$((port + 2))
    [ "$port" -lt 65000 ] || die 3 "no two free ports found"
  done
  local comm=''
  case "$(getent ahostsv4 "$(uname -n)" 2>/dev/null | awk 'NR == 1 { print $1 }')" in
    127.*) comm="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny" ;;
  esac
  local mem
  mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
  cat >"$(conf_of "$dir")" <<EOF
# Written by slurm-local.sh: a private single-node cluster on 127.0.0.1.
ClusterName=glorot-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
$comm
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  # The supervisor leaves our session and our stdout: the caller may be waiting
  # for this command's output to close.
  setsid "$SELF" _supervise "$dir" "$timeout" "$owner" </dev/null >"$dir/log/supervisor.log" 2>&1 &
  local up_by=$(($(date +%s) + 90))
  while [ "$(date +%s)" -lt "$up_by" ]; do
    if [ -e "$dir/ready" ]; then
      say "cluster up in $dir: 127.0.0.1 ports $port/$((port + 1)), $cpus CPUs, stops after ${timeout}s"
      echo "SLURM_CONF=$(conf_of "$dir")"
      return 0
    fi
    if [ -e "$dir/stopped" ]; then break; fi
    sleep 0.2
  done
  say "the cluster did not come up; supervisor and daemon logs:"
  tail -n 20 "$dir/log/supervisor.log" "$dir"/log/*.log "$dir"/log/*.stderr "$dir/munge/munged.log" >&2 2>/dev/null
  cmd_stop "$dir" >/dev/null 2>&1
  exit 3
}

# Stops DIR's cluster, in order: cancel every job, let slurmstepd report the
# steps' ends, stop slurmd, slurmctld and munged (pids from DIR/daemons.pid), kill
# any stray process still carrying this cluster's SLURM_CONF, mark DIR stopped.
teardown() {
  local dir=$1 conf pid jobs p
  conf=$(conf_of "$dir")
  daemon_pid() { awk -v n="$1" '$1 == n { print $2 }' "$dir/daemons.pid" 2>/dev/null; }
  pid=$(daemon_pid slurmctld)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    jobs=$(sl "$dir" squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
      say "cancelling jobs: ${jobs//$'\n'/ }"
      # shellcheck disable=SC2086
      sl "$dir" scancel $jobs 2>/dev/null
      for _ in $(seq 40); do
        [ -z "$(sl "$dir" squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.5
      done
    fi
  fi
  for _ in $(seq 40); do
    [ -z "$(conf_pids "$conf" slurmstepd)" ] && break
    sleep 0.5
  done
  stop_pid slurmd "$(daemon_pid slurmd)"
  stop_pid slurmctld "$(daemon_pid slurmctld)"
  stop_pid munged "$(daemon_pid munged)"
  for p in $(conf_pids "$conf"); do
    say "stray pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80)); killing it"
    kill -KILL "$p" 2>/dev/null
  done
  rm -f "$dir/ready"
  date +%s >"$dir/stopped"
  say "stopped"
}

# The supervisor: parent of the three daemons; tears down on every way out.
cmd_supervise() {
  local dir=$1 timeout=$2 owner=$3
  local conf start deadline munged_pid ctld_pid slurmd_pid stopping=0
  conf=$(conf_of "$dir")
  start=$(date +%s)
  deadline=$((start + timeout))
  echo $$ >"$dir/supervisor.pid"
  : >"$dir/daemons.pid"
  trap 'trap "" INT TERM HUP; say "stopping the cluster"; teardown "$dir"' EXIT
  trap 'stopping=1' TERM INT HUP

  munged -F --socket="$dir/munge/munge.sock" --key-file="$dir/key/munge.key" \
    --log-file="$dir/munge/munged.log" --pid-file="$dir/munge/munged.pid" \
    --seed-file="$dir/munge/munged.seed" --origin=127.0.0.1 >"$dir/log/munged.stderr" 2>&1 &
  munged_pid=$!
  echo "munged $munged_pid" >>"$dir/daemons.pid"
  for _ in $(seq 100); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
  [ -S "$dir/munge/munge.sock" ] || { say "munged did not start"; exit 3; }
  SLURM_CONF=$conf slurmctld -D -i >"$dir/log/slurmctld.stderr" 2>&1 &
  ctld_pid=$!
  echo "slurmctld $ctld_pid" >>"$dir/daemons.pid"
  SLURM_CONF=$conf slurmd -D -N localhost >"$dir/log/slurmd.stderr" 2>&1 &
  slurmd_pid=$!
  echo "slurmd $slurmd_pid" >>"$dir/daemons.pid"
  say "daemons: munged $munged_pid, slurmctld $ctld_pid, slurmd $slurmd_pid"
  local state='' up_by=$(($(date +%s) + 60))
  while [ "$(date +%s)" -lt "$up_by" ] && [ "$stopping" = 0 ]; do
    state=$(sl "$dir" sinfo -h -n localhost -o %t 2>/dev/null)
    [ "$state" = idle ] && break
    kill -0 "$ctld_pid" 2>/dev/null && kill -0 "$slurmd_pid" 2>/dev/null || break
    sleep 0.2
  done
  [ "$state" = idle ] || { say "node state '${state:-none}', not idle"; exit 3; }
  touch "$dir/ready"
  say "ready"
  while [ "$stopping" = 0 ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then say "hard timeout (${timeout}s) reached"; exit 124; fi
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then say "owner pid $owner is gone"; exit 0; fi
    local name pid
    while read -r name pid; do
      kill -0 "$pid" 2>/dev/null || { say "$name (pid $pid) died"; exit 3; }
    done <"$dir/daemons.pid"
    sleep 0.5
  done
  say "stop requested"
  exit 0
}

# ----------------------------------------------------------------------- stop
cmd_stop() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  [ -d "$dir" ] || die 2 "no cluster directory $dir"
  local sup
  sup=$(cat "$dir/supervisor.pid" 2>/dev/null)
  if [ -n "$sup" ] && [ ! -e "$dir/stopped" ] && kill -0 "$sup" 2>/dev/null; then
    kill -TERM "$sup" 2>/dev/null
  fi
  # Cleanup takes a few seconds; its worst case (jobs that will not die, daemons
  # ignoring TERM) is about 70 s.
  for _ in $(seq 900); do
    [ -e "$dir/stopped" ] && return 0
    [ -n "$sup" ] && kill -0 "$sup" 2>/dev/null || break
    sleep 0.1
  done
  [ -e "$dir/stopped" ] && return 0
  # The supervisor is gone without cleaning up (killed with KILL): do its work.
  say "supervisor gone without cleanup; stopping the daemons it recorded"
  teardown "$dir"
}

cmd_exec() {
  local dir=${1:-}
  [ -n "$dir" ] && [ $# -ge 2 ] || usage
  shift
  [ -e "$dir/ready" ] || die 3 "no running cluster in $dir"
  SLURM_CONF=$(conf_of "$dir") exec "$@"
}

# ----------------------------------------------------------------------- wait
# Task ids of JOBID, finished ones included (the controller keeps ended jobs for
# MinJobAge, 300 s by default), merged with those already in the jobcomp log.
task_ids() {
  local dir=$1 job=$2
  {
    sl "$dir" squeue -h -r -t all -j "$job" -o %K 2>/dev/null
    grep -oE "ArrayJobId=$job ArrayTaskId=[0-9]+" "$dir/log/jobcomp.txt" 2>/dev/null | sed 's/.*=//'
  } | grep -E '^[0-9]+$' | sort -n -u
}
ended_record() { # DIR JOB TASK -> the last jobcomp line of that task
  grep -E "ArrayJobId=$2 ArrayTaskId=$3( |$)" "$1/log/jobcomp.txt" 2>/dev/null | tail -n 1
}

cmd_wait() {
  local dir=${1:-} job=${2:-} secs=${3:-600}
  [ -n "$dir" ] && is_number "$job" && is_number "$secs" || usage
  local deadline=$(($(date +%s) + secs)) ids active t missing
  ids=$(task_ids "$dir" "$job")
  [ -n "$ids" ] || die 1 "job $job is unknown to the controller"
  while :; do
    active=$(sl "$dir" squeue -h -r -j "$job" -t PD,R,CG,CF,S,RQ,RS,RH -o %K 2>/dev/null)
    missing=0
    for t in $ids; do [ -n "$(ended_record "$dir" "$job" "$t")" ] || missing=1; done
    if [ -z "$active" ] && [ "$missing" = 0 ]; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "job $job not done after ${secs}s; active tasks: ${active//$'\n'/ }"
      exit 124
    fi
    [ -e "$dir/ready" ] || die 3 "the cluster in $dir stopped"
    sleep 0.5
  done
  local failed=0 line state code
  for t in $ids; do
    line=$(ended_record "$dir" "$job" "$t")
    state=$(grep -oE 'JobState=[A-Z_]+' <<<"$line" | cut -d= -f2)
    code=$(grep -oE ' ExitCode=[0-9:]+' <<<"$line" | cut -d= -f2)
    echo "task=$t state=$state exit=$code"
    [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] || failed=$((failed + 1))
  done
  [ "$failed" = 0 ] || { say "$failed task(s) of job $job did not complete"; exit 1; }
}

cmd_pids() {
  local dir=${1:-} job=${2:-} task=${3:-} d p env
  [ -n "$dir" ] && is_number "$job" && [[ $task =~ ^[0-9]+$ ]] || usage
  for p in $(conf_pids "$(conf_of "$dir")"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] && continue
    env=$({ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null)
    grep -qxF "SLURM_ARRAY_JOB_ID=$job" <<<"$env" && grep -qxF "SLURM_ARRAY_TASK_ID=$task" <<<"$env" &&
      echo "$p"
  done
}

# ------------------------------------------------------------------------ run
cmd_run() {
  local cpus timeout=1800 keep=0 o OPTIND=1
  cpus=$(nproc 2>/dev/null || echo 1)
  while getopts "c:t:k" o; do
    case $o in c) cpus=$OPTARG ;; t) timeout=$OPTARG ;; k) keep=1 ;; *) usage ;; esac
  done
  shift $((OPTIND - 1))
  [ "${1:-}" = -- ] && shift
  [ $# -ge 1 ] || usage
  is_number "$timeout" || die 2 "not a positive number: '$timeout'"
  local begin=$(($(date +%s)))
  cmd_install
  local dir rc=0
  dir=$(mktemp -d "${TMPDIR:-/tmp}/slurm-local.XXXXXX") || die 3 "mktemp failed"
  rmdir "$dir"
  trap 'cmd_stop "$dir"; if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then say "kept $dir"; else rm -rf -- "$dir"; fi' EXIT
  trap 'rc=130; exit 130' INT
  trap 'rc=143; exit 143' TERM
  (cmd_start "$dir" -c "$cpus" -t "$timeout" -o $$) >/dev/null || { rc=3; exit 3; }
  local job
  job=$(sl "$dir" sbatch --parsable "$@") || { rc=1; say "sbatch failed"; exit 1; }
  job=${job%%;*}
  say "submitted job $job: sbatch $*"
  local left=$((timeout - ($(date +%s) - begin)))
  [ "$left" -gt 0 ] || left=1
  (cmd_wait "$dir" "$job" "$left") || rc=$?
  [ "$rc" = 0 ] || say "logs: $dir/log (slurmctld.log, slurmd.log) and the job's --output files"
  exit "$rc"
}

sub=${1:-}
[ $# -ge 1 ] && shift
case $sub in
  install) cmd_install "$@" ;;
  start) cmd_start "$@" ;;
  _supervise) cmd_supervise "$@" ;;
  stop) cmd_stop "$@" ;;
  exec) cmd_exec "$@" ;;
  wait) cmd_wait "$@" ;;
  pids) cmd_pids "$@" ;;
  run) cmd_run "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
