#!/usr/bin/env bash
# Side-by-side dump and restore times: mysnap vs Debian's mydumper/myloader on sysbench
# tables, on throwaway servers. Runs alternate between tools; prints medians and ratios.
#   bench/compare.sh                 # 8 tables x 250k rows, 4 threads, 3 runs each
#   TABLES=8 ROWS=500000 THREADS=2 RUNS=5 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
TABLES=${TABLES:-8} ROWS=${ROWS:-250000} THREADS=${THREADS:-4} RUNS=${RUNS:-3}
for tool in sysbench mydumper myloader; do
  command -v $tool >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench mydumper >/dev/null; break; }
done
cargo build --release --quiet
mysnap=$PWD/target/release/mysnap

work=$(mktemp -d /tmp/mysnap-bench.XXXXXX)
cleanup() { server_stop "$work/src"; server_stop "$work/dst"; rm -rf "$work"; }
trap cleanup EXIT
# The same buffer pool on both sides; the target gets no binlog so that neither loader pays for it.
src_port=$(free_port); server_start "$work/src" "$src_port" --innodb-buffer-pool-size=2G
dst_port=$(free_port); server_start "$work/dst" "$dst_port" --innodb-buffer-pool-size=2G --skip-log-bin
server_client "$work/src" -e "CREATE DATABASE sbtest"
echo "preparing sysbench: $TABLES tables x $ROWS rows"
sysbench oltp_read_write --db-driver=mysql --mysql-socket="$work/src/mysqld.sock" --mysql-user=root \
  --mysql-db=sbtest --tables="$TABLES" --table-size="$ROWS" --threads=2 prepare >/dev/null
size=$(server_client "$work/src" -N -e "SELECT ROUND(SUM(DATA_LENGTH+INDEX_LENGTH)/1048576) FROM information_schema.TABLES WHERE TABLE_SCHEMA='sbtest'")
echo "sbtest: ${size} MiB in InnoDB; $THREADS threads; $RUNS runs each; $(nproc) cores"

results=$work/results.tsv
: > "$results"
# timed NAME CMD...: appends "NAME seconds maxrss_kb" to the results.
timed() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log" >&2; exit 1; }
  echo "$name $(cat "$work/time")" >> "$results"
}
src=(-h 127.0.0.1 -P "$src_port" -u root)
dst=(-h 127.0.0.1 -P "$dst_port" -u root)
reset_target() { server_client "$work/dst" -e "DROP DATABASE IF EXISTS sbtest"; }
for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS"
  rm -rf "$work"/d-*
  timed "dump:mysnap-zstd" "$mysnap" dump "${src[@]}" --database sbtest --output "$work/d-mysnap" --threads "$THREADS" -q
  timed "dump:mydumper" mydumper "${src[@]}" -B sbtest -o "$work/d-mydumper" -t "$THREADS" --trx-consistency-only
  timed "dump:mysnap-none" "$mysnap" dump "${src[@]}" --database sbtest --output "$work/d-mysnap-none" --compress none --threads "$THREADS" -q
  timed "dump:mydumper-c" mydumper "${src[@]}" -B sbtest -o "$work/d-mydumper-c" -t "$THREADS" --trx-consistency-only -c
  reset_target
  timed "restore:mysnap" "$mysnap" restore "$work/d-mysnap" "${dst[@]}" --threads "$THREADS" -q
  reset_target
  timed "restore:myloader" myloader "${dst[@]}" -d "$work/d-mydumper" -t "$THREADS"
done
du_mib() { du -sm "$1" | cut -f1; }
echo
echo "output sizes (MiB): mysnap-zstd $(du_mib "$work/d-mysnap"), mysnap-none $(du_mib "$work/d-mysnap-none"), mydumper $(du_mib "$work/d-mydumper"), mydumper -c $(du_mib "$work/d-mydumper-c")"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split()
    rows.setdefault(name, []).append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
print(f"{'step':<22}{'median s':>10}{'runs':>6}{'max RSS MiB':>13}")
for k, v in rows.items():
    print(f"{k:<22}{med[k]:>10.2f}{len(v):>6}{max(r for _, r in v)/1024:>13.0f}")
def ratio(a, b):
    if a in med and b in med:
        print(f"{a} / {b} = {med[a]/med[b]:.2f}")
ratio("dump:mysnap-zstd", "dump:mydumper-c")
ratio("dump:mysnap-none", "dump:mydumper")
ratio("restore:mysnap", "restore:myloader")
PY
