#!/usr/bin/env bash
# glorot-search-parallel.sh - a glorot grid search on a few machines with GNU
# parallel, every machine writing into one shared results directory (NFS or the
# like, mounted at the same path everywhere). See docs/cluster.md.
#
# Usage: cluster/glorot-search-parallel.sh SSHLOGINFILE SHARDS [glorot search run ARGS...]
#
#   cluster/glorot-search-parallel.sh hosts.txt 8 \
#       --grid notebook --out /shared/results/search --data-dir /shared/mnist
#
# SSHLOGINFILE lists machines in GNU parallel's format, one per line (`:` is this
# machine, `user@node2`, `4/node3` runs 4 shards at once there). glorot must be on
# every machine's PATH (or set GLOROT to its path). Each shard runs on one machine
# with every CPU of it, so the file should allow one job per machine (the default
# here, --jobs 1) unless you also pass --workers.
#
# Shard i of SHARDS runs `glorot search run --shard i/SHARDS ARGS...`; a failed
# shard is retried once (on any machine). Resume by running the same command
# again: finished trials are skipped. When every shard is done the last one writes
# summary.json; `glorot search merge --out DIR` writes it at any time.
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,/^set /p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
  exit 2
fi
logins=$1 shards=$2
shift 2
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "SHARDS must be a positive number, not '$shards'" >&2; exit 2; }
command -v parallel >/dev/null || { echo "GNU parallel is not installed (Debian: apt-get install parallel)" >&2; exit 2; }
GLOROT=${GLOROT:-glorot}

# -q quotes the command for the remote shells; --env passes the data location on.
exec parallel --will-cite -q --sshloginfile "$logins" --jobs 1 --retries 2 \
  --env GLOROT_MNIST_DIR --line-buffer --tagstring 'shard {}' --halt never \
  "$GLOROT" search run --shard "{}/$shards" "$@" ::: $(seq 0 $((shards - 1)))
