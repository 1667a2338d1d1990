#!/usr/bin/env bash
# Peers in the same run (issue 11): liandong's own scenarios, then etcd 3.7.3
# (1 and 3 members), NATS 2.15.2 JetStream (stream on A mirrored by B; with its
# default fsync every 2 minutes, then with sync_interval: always) and raw
# hashicorp/raft + bbolt (on raft-boltdb and on raft-wal logs), on this
# machine, one after another, and a table of liandong/peer ratios. The peer servers are installed from the Go module proxy
# into a temporary GOBIN; everything listens on 127.0.0.1 on free ports, lives
# in a temporary directory, and every process started here is stopped by pid.
# liandong's converge scenario runs the four centres as processes of their own
# (--processes, since 879d256), as the peer servers run.
#
#   bash integration/peers/run.sh [--duration 10s] [--clients 1,16,64,256]
#        [--catchup 100000] [--rate 200] [--wal-clients 64] [--out FILE] [--keep]
#
# Environment equivalents: PEERS_DURATION, PEERS_CLIENTS, PEERS_CATCHUP,
# PEERS_RATE, PEERS_WAL_CLIENTS (client counts of the write scenario run again
# with liandong's opt-in raft-wal log), PEERS_OUT, PEERS_KEEP=1 (keep the work
# directory and its logs). With the defaults it takes 10-12 minutes on two
# cores, the peer servers' first build (2-5 minutes) not included.
set -euo pipefail

duration=${PEERS_DURATION:-10s}
clients=${PEERS_CLIENTS:-1,16,64,256}
catchup=${PEERS_CATCHUP:-100000}
rate=${PEERS_RATE:-200}
wal_clients=${PEERS_WAL_CLIENTS:-64}
out=${PEERS_OUT:-$PWD/peers-result.json}
keep=${PEERS_KEEP:-0}
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--catchup) catchup=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--wal-clients) wal_clients=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$out" in /*) ;; *) out=$PWD/$out ;; esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/liandong-peers.XXXXXX")
bin=$work/bin
mkdir -p "$bin"

pids=()
stop_pid() { # stop_pid PID: TERM, up to 15 s, then KILL
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "(pid $pid did not stop after SIGTERM; killing it)" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	if [ "$rc" -ne 0 ]; then
		echo "run.sh failed (exit $rc); last lines of the logs in $work:" >&2
		for f in "$work"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
	fi
	if [ "$keep" = 1 ] || [ "$rc" -ne 0 ]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bg() { # start_bg NAME CMD...: run CMD in the background, log to $work/NAME.log
	local name=$1; shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
	last_pid=$!
}
stop_all() { # stop every process started so far
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	pids=()
}
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }

step "build liandong and the peer load generator; install etcd v3.7.3 and nats-server v2.15.2 into $bin"
(cd "$root" && go build -o "$bin/liandong" ./cmd/liandong)
(cd "$here" && go build -o "$bin/peerbench" .)
GOBIN=$bin go install github.com/nats-io/nats-server/v2@v2.15.2
if ! GOBIN=$bin go install go.etcd.io/etcd/server/v3@v3.7.3 2>"$work/etcd-install.log"; then
	# The module's go.mod has replace directives, which `go install pkg@version`
	# refuses; build the same package and version through a scratch module.
	echo "(go install go.etcd.io/etcd/server/v3@v3.7.3 refused: $(grep -m1 -o 'replace directives' "$work/etcd-install.log" || echo see log); building it through a scratch module pinned to v3.7.3)" >&2
	mkdir -p "$work/etcd-mod"
	(cd "$work/etcd-mod" && printf 'module etcdbuild\n\ngo 1.26\n' >go.mod &&
		go get go.etcd.io/etcd/server/v3@v3.7.3 2>>"$work/etcd-install.log" &&
		GOBIN=$bin go install go.etcd.io/etcd/server/v3)
fi
[ -x "$bin/server" ] && mv "$bin/server" "$bin/etcd" # go install names it after the path element before /v3
"$bin/etcd" --version | head -1 >&2
"$bin/nats-server" --version >&2

step "liandong: write ($clients clients, 1 and 3 replicas), batches of 100, the HTTP floor, converge ($rate/s); $duration each"
"$bin/liandong" bench write batch floor converge --processes --clients "$clients" --replicas 3 --duration "$duration" \
	--rate "$rate" --dir "$work/liandong" --json >"$work/liandong.json" 2>"$work/liandong.log"
grep -o '"scenario": "[^"]*"\|"per_sec": [0-9.]*' "$work/liandong.json" | paste - - >&2
# The catch-up runs in a process and directory of its own: after the write
# scenarios (gigabytes written, in the same process) it measured a quarter to
# a third below what a joining centre sees (BENCHMARKS.md, session 8).
rm -rf "$work/liandong"
step "liandong: catchup ($catchup entries)"
"$bin/liandong" bench catchup --entries "$catchup" --dir "$work/liandong-catchup" --json \
	>"$work/liandong-catchup.json" 2>"$work/liandong-catchup.log"
grep -o '"scenario": "[^"]*"\|"per_sec": [0-9.]*' "$work/liandong-catchup.json" | paste - - >&2

# raft-wal (one fdatasync a commit against raft-boltdb's two) is opt-in; the
# ratios it gives are reported beside the targets, without one.
rm -rf "$work/liandong-catchup"
step "liandong with --log-store wal: write ($wal_clients clients, 1 and 3 replicas), converge ($rate/s); $duration each"
"$bin/liandong" bench write converge --processes --clients "$wal_clients" --replicas 3 --duration "$duration" --log-store wal \
	--rate "$rate" --dir "$work/liandong-wal" --json >"$work/liandong-wal.json" 2>"$work/liandong-wal.log"
grep -o '"scenario": "[^"]*"\|"per_sec": [0-9.]*' "$work/liandong-wal.json" | paste - - >&2
rm -rf "$work/liandong-wal"

step "raw hashicorp/raft + raft-boltdb + bbolt FSM, 1 and 3 voters"
"$bin/peerbench" raft --voters 1 --clients "$clients" --duration "$duration" --dir "$work/raft1" --out "$work/raft1.json"
"$bin/peerbench" raft --voters 3 --clients "$clients" --duration "$duration" --dir "$work/raft3" --out "$work/raft3.json"
rm -rf "$work/raft1" "$work/raft3"
step "raw hashicorp/raft + raft-wal + bbolt FSM, 1 and 3 voters"
"$bin/peerbench" raft --voters 1 --log-store wal --clients "$clients" --duration "$duration" --dir "$work/raft1-wal" --out "$work/raft1-wal.json"
"$bin/peerbench" raft --voters 3 --log-store wal --clients "$clients" --duration "$duration" --dir "$work/raft3-wal" --out "$work/raft3-wal.json"
rm -rf "$work/raft1-wal" "$work/raft3-wal"

etcd_member() { # etcd_member NAME CLIENTPORT PEERPORT CLUSTER TOKEN
	start_bg "etcd-$1" "$bin/etcd" --name "$1" --data-dir "$work/etcd-$1" \
		--listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
		--listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
		--initial-cluster "$4" --initial-cluster-state new --initial-cluster-token "$5" \
		--quota-backend-bytes 8589934592 --log-level error
}

step "etcd v3.7.3, one member"
mapfile -t p < <("$bin/peerbench" ports 2)
etcd_member s1 "${p[0]}" "${p[1]}" "s1=http://127.0.0.1:${p[1]}" single
"$bin/peerbench" etcd --label etcd-1 --endpoints "http://127.0.0.1:${p[0]}" --clients "$clients" --duration "$duration" \
	--pids "$last_pid" --out "$work/etcd1.json"
stop_all

step "etcd v3.7.3, three members"
mapfile -t p < <("$bin/peerbench" ports 6)
cluster="m1=http://127.0.0.1:${p[1]},m2=http://127.0.0.1:${p[3]},m3=http://127.0.0.1:${p[5]}"
etcd_member m1 "${p[0]}" "${p[1]}" "$cluster" triple
etcd_pids=$last_pid
etcd_member m2 "${p[2]}" "${p[3]}" "$cluster" triple
etcd_pids=$etcd_pids,$last_pid
etcd_member m3 "${p[4]}" "${p[5]}" "$cluster" triple
etcd_pids=$etcd_pids,$last_pid
"$bin/peerbench" etcd --label etcd-3 --endpoints "http://127.0.0.1:${p[0]},http://127.0.0.1:${p[2]},http://127.0.0.1:${p[4]}" \
	--clients "$clients" --duration "$duration" --pids "$etcd_pids" --out "$work/etcd3.json"
stop_all

# nats_pair LABEL OUT [JETSTREAM-SETTING]: a stream on A mirrored by B (a leaf
# node of A), measured by peerbench nats into OUT.
nats_pair() {
	mapfile -t p < <("$bin/peerbench" ports 3)
	cat >"$work/nats-a-$1.conf" <<EOF
server_name: A
listen: 127.0.0.1:${p[0]}
jetstream {
	store_dir: "$work/nats-a-$1"
	domain: a
	${3:-}
}
leafnodes { listen: 127.0.0.1:${p[1]} }
EOF
	cat >"$work/nats-b-$1.conf" <<EOF
server_name: B
listen: 127.0.0.1:${p[2]}
jetstream {
	store_dir: "$work/nats-b-$1"
	domain: b
	${3:-}
}
leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${p[1]}" } ] }
EOF
	start_bg "nats-a-$1" "$bin/nats-server" -c "$work/nats-a-$1.conf"
	local nats_pids=$last_pid
	start_bg "nats-b-$1" "$bin/nats-server" -c "$work/nats-b-$1.conf"
	nats_pids=$nats_pids,$last_pid
	"$bin/peerbench" nats --a "nats://127.0.0.1:${p[0]}" --b "nats://127.0.0.1:${p[2]}" --clients "$clients" \
		--duration "$duration" --rate "$rate" --catchup "$catchup" --pids "$nats_pids" --out "$2"
	stop_all
}

step "NATS v2.15.2 JetStream, default settings: stream on A, mirrored by B (a leaf node of A)"
nats_pair default "$work/nats.json"

# JetStream's default fsyncs every 2 minutes, so an acknowledged message can be
# lost to an OS crash; liandong and etcd fsync before they acknowledge. The
# same pair with sync_interval: always says how much of the gap is that.
step "NATS v2.15.2 JetStream, sync_interval: always (fsync before every acknowledgement)"
nats_pair sync "$work/nats-sync.json" "sync_interval: always"

step "liandong / peer ratios"
machine="nproc=$(nproc);loadavg=$(cut -d' ' -f1-3 /proc/loadavg);cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//');go=$(go env GOVERSION);commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$bin/peerbench" report --liandong "$work/liandong.json,$work/liandong-catchup.json" --liandong-wal "$work/liandong-wal.json" \
	--raft-1 "$work/raft1.json" --raft-3 "$work/raft3.json" --raft-1-wal "$work/raft1-wal.json" --raft-3-wal "$work/raft3-wal.json" \
	--etcd-1 "$work/etcd1.json" --etcd-3 "$work/etcd3.json" --nats "$work/nats.json" --nats-sync "$work/nats-sync.json" \
	--command "bash integration/peers/run.sh --duration $duration --clients $clients --catchup $catchup --rate $rate --wal-clients $wal_clients" \
	--machine "$machine" --out "$out"
