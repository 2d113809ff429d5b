#!/usr/bin/env bash
# Dump times of mysnap against the server's floor (SELECT ... INTO OUTFILE of the same
# tables on the same number of sessions), Debian's mydumper and mariadb-dump, on three
# datasets; runs alternate between tools; medians, ratios, output sizes, peak RSS. Then
# the skewed set with 1 and 2 threads, and sysbench oltp_write_only during a dump: the
# global lock time and the live workload's throughput drop.
#   bench/dump.sh                                    # 8 x 500k rows, 1000 small tables
#   ROWS=20000 SMALL_TABLES=50 RUNS=1 bench/dump.sh  # a quick smoke run
#   BIG_GB=5 bench/dump.sh                           # adds one table of ~5 GB (memory bound)
#   BIG_GB=5 ONLY=big TABLES=1 ROWS=1000 bench/dump.sh  # only that table
#   ONLY=small bench/dump.sh                         # only the named datasets
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
TABLES=${TABLES:-8} ROWS=${ROWS:-500000} SMALL_TABLES=${SMALL_TABLES:-1000}
THREADS=${THREADS:-2} RUNS=${RUNS:-3} BIG_GB=${BIG_GB:-0} LOAD_SECONDS=${LOAD_SECONDS:-30}
for tool in sysbench mydumper; do
  command -v $tool >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench mydumper >/dev/null; break; }
done
cargo build --release --quiet
mysnap=$PWD/target/release/mysnap

work=$(mktemp -d /tmp/mysnap-dump-bench.XXXXXX)
cleanup() { server_stop "$work/src"; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/outfile" "$work/out"
src_port=$(free_port)
server_start "$work/src" "$src_port" --innodb-buffer-pool-size=4G --secure-file-priv="$work/outfile"
src=(-h 127.0.0.1 -P "$src_port" -u root)
client() { mariadb --no-defaults "${src[@]}" "$@"; }

sysbench_prepare() { # DB TABLES ROWS
  client -e "CREATE DATABASE IF NOT EXISTS $1"
  sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$src_port" --mysql-user=root \
    --mysql-db="$1" --tables="$2" --table-size="$3" --threads=2 prepare >/dev/null
}

# One table shaped like sysbench's holding most of the bytes, beside a few small ones.
prepare_skewed() {
  sysbench_prepare skewed 1 $((ROWS * 6))
  sysbench_prepare skewed_small 4 $((ROWS / 20))
  for i in 1 2 3 4; do client -e "RENAME TABLE skewed_small.sbtest$i TO skewed.small$i"; done
  client -e "DROP DATABASE skewed_small"
}

prepare_small() {
  client -e "CREATE DATABASE small"
  { for i in $(seq 1 "$SMALL_TABLES"); do
      echo "CREATE TABLE small.t$i (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, KEY (k));"
      echo "INSERT INTO small.t$i SELECT seq, seq * 7 % 1000, REPEAT('x', 120) FROM seq_1_to_100;"
    done; } | client small
}

# ~BIG_GB GB in one table: the memory bound must hold whatever the table size.
prepare_big() {
  local rows=$((BIG_GB * 1024 * 1024 * 1024 / 230))
  client -e "CREATE DATABASE big; CREATE TABLE big.t (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY (k))"
  local step=1000000
  for ((from = 0; from < rows; from += step)); do
    client big -e "INSERT INTO big.t SELECT $from + seq, seq % 100000, REPEAT(CHAR(65 + seq % 26), 120), REPEAT('p', 60) FROM seq_1_to_$step"
  done
}

echo "preparing datasets ($TABLES x $ROWS sysbench rows, skewed, $SMALL_TABLES small tables)"
if [ -z "${ONLY:-}" ]; then
  sysbench_prepare sbtest "$TABLES" "$ROWS"
  prepare_skewed
  prepare_small
else
  # Only the datasets named; the live-workload step needs sbtest in any case.
  case " $ONLY " in *" sbtest "*) sysbench_prepare sbtest "$TABLES" "$ROWS" ;; *) TABLES=1 ROWS=1000; sysbench_prepare sbtest 1 1000 ;; esac
  case " $ONLY " in *" skewed "*) prepare_skewed ;; esac
  case " $ONLY " in *" small "*) prepare_small ;; esac
fi
datasets=(sbtest skewed small)
if [ "$BIG_GB" -gt 0 ]; then prepare_big; datasets+=(big); fi
if [ -n "${ONLY:-}" ]; then read -r -a datasets <<< "$ONLY"; fi
client -e "ANALYZE TABLE $(client -N -e "SELECT GROUP_CONCAT(CONCAT(TABLE_SCHEMA,'.',TABLE_NAME)) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('sbtest','skewed','small','big')")" >/dev/null

results=$work/results.tsv sizes=$work/sizes.tsv
: > "$results"; : > "$sizes"
# Outputs stay until their dataset is done: files created just after others were
# deleted cost ext4 a scan for recently freed inodes (seen in perf, 0.3 ms a file), which
# would weigh on the 1000-table dataset. Then they go, and the disk gets 35 s to forget.
forget_outputs() { rm -rf "$work/out" "$work/outfile"/*; mkdir -p "$work/out"; sync; sleep 35; }
timed() { # NAME DIR CMD...: appends "NAME seconds maxrss_kb", then the output size
  local name=$1 dir=$2; shift 2
  sync  # no tool pays for the one before it: the kernel throttles writers once dirty pages pile up
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  echo "$name $(cat "$work/time")" >> "$results"
  [ -e "$dir" ] && echo "$name $(du -sk "$dir" | cut -f1)" >> "$sizes" || true
}

# The floor: the server writes each table's rows to a file itself, THREADS tables at a
# time, largest first. Timed by wall clock (no client process worth an RSS).
floor() { # DB
  local db=$1 start end dir
  dir=$(mktemp -d "$work/outfile/$db.XXXXXX")
  sync
  start=$(date +%s.%N)
  client -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$db' ORDER BY DATA_LENGTH DESC" |
    xargs -P "$THREADS" -I{} mariadb --no-defaults "${src[@]}" -e "SELECT * FROM $db.{} INTO OUTFILE '$dir/$db.{}.tsv'"
  end=$(date +%s.%N)
  echo "$db:floor-outfile $(python3 -c "print(round($end - $start, 2))") 0" >> "$results"
  echo "$db:floor-outfile $(du -sk "$dir" | cut -f1)" >> "$sizes"
}

for db in "${datasets[@]}"; do
  forget_outputs
  if [ "$db" = big ]; then
    # One run of mysnap alone: this dataset shows the memory bound, not a race.
    timed "big:mysnap-zstd" "$work/out/zstd" "$mysnap" dump "${src[@]}" --database big --output "$work/out/zstd" --threads "$THREADS" -q
    big_sizes="table big.t: $(client -N -e "SELECT ROUND((DATA_LENGTH + INDEX_LENGTH) / POW(1024, 3), 2) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'big'") GiB in InnoDB, $("$mysnap" show "$work/out/zstd" --json | python3 -c 'import json,sys; t=json.load(sys.stdin)["totals"]; print("%.2f GiB of row text, %d rows, %d files" % (t["raw_bytes"] / 2**30, t["rows"], t["files"]))')"
    continue
  fi
  for run in $(seq 1 "$RUNS"); do
    echo "$db: run $run/$RUNS"
    o=$work/out/$run
    mkdir -p "$o"
    floor "$db"
    timed "$db:mysnap-none" "$o/none" "$mysnap" dump "${src[@]}" --database "$db" --output "$o/none" --compress none --threads "$THREADS" -q
    timed "$db:mysnap-zstd" "$o/zstd" "$mysnap" dump "${src[@]}" --database "$db" --output "$o/zstd" --threads "$THREADS" -q
    timed "$db:mysnap-gzip" "$o/gzip" "$mysnap" dump "${src[@]}" --database "$db" --output "$o/gzip" --compress gzip --threads "$THREADS" -q
    timed "$db:mydumper" "$o/mydumper" mydumper "${src[@]}" -B "$db" -o "$o/mydumper" -t "$THREADS" --trx-consistency-only
    timed "$db:mydumper-c" "$o/mydumper-c" mydumper "${src[@]}" -B "$db" -o "$o/mydumper-c" -t "$THREADS" --trx-consistency-only -c
    timed "$db:mariadb-dump" "$o/md.sql" bash -c "mariadb-dump --no-defaults ${src[*]} --single-transaction --quick $db > $o/md.sql"
  done
done
forget_outputs
# gzip -6 of the same row text: the size the default codec must not exceed.
for db in "${datasets[@]}"; do
  [ "$db" = big ] && continue
  "$mysnap" dump "${src[@]}" --database "$db" --output "$work/out/plain-$db" --compress none --threads "$THREADS" -q
  echo "$db:gzip-6-of-row-text $(cat "$work"/out/plain-$db/data/* | gzip -6 | wc -c | awk '{print int($1/1024)}')" >> "$sizes"
  rm -rf "$work/out/plain-$db"
done
# Within-table parallelism: the skewed set with 1 and 2 threads.
[ -n "${ONLY:-}" ] && RUNS_SKEWED=0 || RUNS_SKEWED=$RUNS
for run in $(seq 1 "$RUNS_SKEWED"); do
  for t in 1 2; do
    timed "skewed:mysnap-zstd-threads-$t" "$work/out/t$t-$run" "$mysnap" dump "${src[@]}" --database skewed --output "$work/out/t$t-$run" --threads "$t" -q
  done
done

# Live workload: oltp_write_only alone, then again with dumps following each other for
# the whole of it: the workload's throughput drop, and each dump's global lock time.
load() { sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$src_port" \
  --mysql-user=root --mysql-db=sbtest --tables="$TABLES" --table-size="$ROWS" --threads=2 --time="$LOAD_SECONDS" run |
  awk '/transactions:/ {gsub(/[(]/, "", $3); print $3}'; }
# Twice: with the benchmark server's settings (sync_binlog=0, innodb_flush_log_at_trx_commit=2),
# and durable ones (1 and 1). BACKUP STAGE BLOCK_COMMIT fsyncs the binlog while commits
# wait, so with sync_binlog=0 its time grows with the binlog written since the last sync.
live_step() { # LABEL
  local alone with_dump locks
  alone=$(load)
  : > "$work/locks"; touch "$work/loading"
  ( while [ -e "$work/loading" ]; do rm -rf "$work/out/live"
      "$mysnap" dump "${src[@]}" --database sbtest --output "$work/out/live" --threads "$THREADS" -q
      "$mysnap" show "$work/out/live" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["consistency"]; print(c["method"], round(c["global_lock_ms"], 1))' >> "$work/locks"
    done ) &
  local dumper=$!
  with_dump=$(load)
  rm -f "$work/loading"
  wait "$dumper"  # not a bare wait: the server runs in the background too
  locks=$(awk '{print $2}' "$work/locks" | paste -sd' ')
  live_report+="$1: oltp_write_only tps alone $alone, with dumps running throughout $with_dump; global lock ms of each dump ($(awk '{print $1}' "$work/locks" | sort -u)): $locks (goal < 50)"$'\n'
}
live_report=""
live_step "sync_binlog=0, innodb_flush_log_at_trx_commit=2"
client -e "SET GLOBAL sync_binlog = 1, GLOBAL innodb_flush_log_at_trx_commit = 1"
live_step "sync_binlog=1, innodb_flush_log_at_trx_commit=1"

echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(mariadbd --version | cut -d' ' -f1-4)"
echo "threads: $THREADS; runs: $RUNS; datasets: ${datasets[*]}"
python3 - "$results" "$sizes" <<'PY'
import statistics, sys
rows, sizes = {}, {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split()
    rows.setdefault(name, []).append((float(secs), int(rss)))
for line in open(sys.argv[2]):
    name, kb = line.split()
    sizes[name] = int(kb)
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
print(f"{'dataset:tool':<34}{'median s':>10}{'x floor':>9}{'max RSS MiB':>13}{'size MiB':>10}")
for k, v in rows.items():
    db = k.split(":")[0]
    fl = med.get(f"{db}:floor-outfile")
    size = f"{sizes[k]/1024:.0f}" if k in sizes else ""
    print(f"{k:<34}{med[k]:>10.2f}{med[k]/fl if fl else 0:>9.2f}{max(r for _, r in v)/1024:>13.0f}{size:>10}")
for k, kb in sizes.items():
    if "gzip-6" in k:
        print(f"{k:<34}{'':>32}{kb/1024:>10.0f}")
def ratio(a, b, label):
    if a in med and b in med:
        print(f"{label}: {med[a]/med[b]:.2f}")
for db in ("sbtest", "skewed", "small", "big"):
    ratio(f"{db}:mysnap-none", f"{db}:floor-outfile", f"{db} uncompressed / floor (goal <= 1.2)")
    ratio(f"{db}:mysnap-zstd", f"{db}:mysnap-none", f"{db} zstd / uncompressed (goal <= 1.5)")
    ratio(f"{db}:mydumper-c", f"{db}:mysnap-zstd", f"{db} mydumper -c / mysnap zstd (goal >= 4)")
ratio("skewed:mysnap-zstd-threads-1", "skewed:mysnap-zstd-threads-2", "skewed 1 thread / 2 threads (goal >= 1.6)")
PY
printf '%s' "$live_report"
if [ -n "${big_sizes:-}" ]; then echo "$big_sizes"; fi
