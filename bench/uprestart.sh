#!/usr/bin/env bash
# How long `tether restart` takes, from the command to the new process being
# ready (docs/benchmarks.md). A stack of three processes, each a tree of
# three (sh → sh → a Node TCP server on its $PORT), ready when the port
# accepts; restarted N times one process (web) and N times all three, each
# timed around the whole `tether restart` command. For scale, the Node
# server's own start (exec to listening) alone, N times.
#
#   bash bench/uprestart.sh [N]      # from the repository's root; N=15
set -euo pipefail
n=${1:-15}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/tether" ./cmd/tether
server='require("net").createServer(c => c.end()).listen(+process.env.PORT, "127.0.0.1")'
cat >"$work/Procfile" <<PROCFILE
web: sh -c 'node -e '\''$server'\'' & wait'
api: sh -c 'node -e '\''$server'\'' & wait'
worker: sh -c 'node -e '\''$server'\'' & wait'
PROCFILE
printf '[web]\nready = "tcp"\n[api]\nready = "tcp"\n[worker]\nready = "tcp"\n' >"$work/tether.toml"
base=$((20000 + RANDOM % 5000))
"$work/tether" up -f "$work/Procfile" -p "$base" -color never >"$work/up.log" 2>&1 &
up=$!
for _ in $(seq 200); do
	[ "$(grep -c ' is ready' "$work/up.log" || true)" -ge 3 ] && break
	sleep 0.05
done
ms() { echo $((($2 - $1) / 1000000)); }
stats() { # name, then the samples in ms
	local name=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v name="$name" '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%-32s median %5.0f ms  range %4d–%d ms  (n=%d)\n", name, m, a[1], a[NR], NR }'
}
one=() all=() bare=()
for _ in $(seq "$n"); do
	t0=$(date +%s%N); "$work/tether" restart -f "$work/Procfile" web >/dev/null; t1=$(date +%s%N)
	one+=("$(ms "$t0" "$t1")")
done
for _ in $(seq "$n"); do
	t0=$(date +%s%N); "$work/tether" restart -f "$work/Procfile" >/dev/null; t1=$(date +%s%N)
	all+=("$(ms "$t0" "$t1")")
done
for _ in $(seq "$n"); do
	t0=$(date +%s%N)
	PORT=$((base + 1000)) node -e "require('net').createServer().listen(+process.env.PORT, '127.0.0.1', () => process.exit())"
	t1=$(date +%s%N)
	bare+=("$(ms "$t0" "$t1")")
done
kill -INT "$up"
wait "$up" || true
grep -c 'restart ' "$work/up.log" >/dev/null
stats "tether restart web (1 tree)" "${one[@]}"
stats "tether restart (3 trees)" "${all[@]}"
stats "node alone: exec to listening" "${bare[@]}"
