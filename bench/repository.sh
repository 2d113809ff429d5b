#!/usr/bin/env bash
# The repository against a plain dump directory, side by side in one run: dump into a
# (fresh) repository vs --output DIR, restore from each, verify of the snapshot beside
# the disk's sequential read rate over the same bytes, then list and forget --dry-run
# on a repository of 1000 snapshots. Medians, ratios, peak RSS.
#   bench/repository.sh                                  # sbtest 8 x 500k rows, 3 runs
#   TABLES=2 ROWS=20000 RUNS=1 SNAPSHOTS=50 bench/repository.sh   # a quick smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
TABLES=${TABLES:-8} ROWS=${ROWS:-500000} THREADS=${THREADS:-2} RUNS=${RUNS:-3}
SNAPSHOTS=${SNAPSHOTS:-1000}
command -v sysbench >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
cargo build --release --quiet
mysnap=$PWD/target/release/mysnap

work=$(mktemp -d /var/tmp/mysnap-repo-bench.XXXXXX)
cleanup() { server_stop "$work/src"; server_stop "$work/dst"; rm -rf "$work"; }
trap cleanup EXIT
src_port=$(free_port); server_start "$work/src" "$src_port" --innodb-buffer-pool-size=2G
dst_port=$(free_port); server_start "$work/dst" "$dst_port" --innodb-buffer-pool-size=2G --skip-log-bin
server_client "$work/src" -e "CREATE DATABASE sbtest"
echo "preparing sysbench: $TABLES tables x $ROWS rows"
sysbench oltp_read_write --db-driver=mysql --mysql-socket="$work/src/mysqld.sock" --mysql-user=root \
  --mysql-db=sbtest --tables="$TABLES" --table-size="$ROWS" --threads=2 prepare >/dev/null
echo "$THREADS threads; $RUNS runs each; $(nproc) cores; work in $work ($(df -h --output=source,fstype "$work" | tail -1))"

results=$work/results.tsv
: > "$results"
# timed NAME CMD...: appends "NAME seconds maxrss_kb" to the results.
timed() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log" >&2; exit 1; }
  echo "$name $(cat "$work/time")" >> "$results"
}
# Cold reads where the kernel allows dropping the page cache (root), else say so.
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(page cache not dropped)"; }
src=(-h 127.0.0.1 -P "$src_port" -u root)
dst=(-h 127.0.0.1 -P "$dst_port" -u root)
reset_target() { server_client "$work/dst" -e "DROP DATABASE IF EXISTS sbtest"; }
for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS"
  rm -rf "$work/dir" "$work/repo"
  "$mysnap" init --repo "$work/repo" >/dev/null
  # Alternate which goes first, so that neither always meets the server's leftovers
  # (purge after a DROP, a warm or cold buffer pool).
  dump_dir() { timed "dump:directory" "$mysnap" dump "${src[@]}" -B sbtest --output "$work/dir" --threads "$THREADS" -q; }
  dump_repo() {
    timed "dump:repository" "$mysnap" dump "${src[@]}" -B sbtest --repo "$work/repo" --threads "$THREADS" -q
    id=$(cat "$work/out.log")
  }
  restore_dir() { reset_target; timed "restore:directory" "$mysnap" restore "$work/dir" "${dst[@]}" --threads "$THREADS" -q; }
  restore_repo() { reset_target; timed "restore:repository" "$mysnap" restore "$id" --repo "$work/repo" "${dst[@]}" --threads "$THREADS" -q; }
  if [ $((run % 2)) = 1 ]; then dump_dir; dump_repo; restore_dir; restore_repo
  else dump_repo; dump_dir; restore_repo; restore_dir; fi
  # The disk's sequential read rate over the snapshot's own objects, then verify of them,
  # both from a cold page cache.
  drop_caches
  timed "read:cat-objects" sh -c "find '$work/repo/data' -type f -print0 | xargs -0 cat > /dev/null"
  drop_caches
  timed "verify:repository" "$mysnap" verify "$id" --repo "$work/repo" --threads "$THREADS"
  drop_caches
  timed "verify:directory" "$mysnap" verify "$work/dir" --threads "$THREADS"
done
stored=$(du -sb "$work/repo/data" | cut -f1)

# 1000 snapshots: real dumps of a small database into one repository.
echo "taking $SNAPSHOTS snapshots of a small database"
server_client "$work/src" -e "CREATE DATABASE small; USE small; CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t SELECT seq, seq FROM seq_1_to_1000"
"$mysnap" init --repo "$work/many" >/dev/null
for i in $(seq 1 "$SNAPSHOTS"); do
  server_client "$work/src" -e "UPDATE small.t SET v = v + 1 WHERE id = $((i % 1000 + 1))"
  "$mysnap" dump "${src[@]}" -B small --repo "$work/many" --threads 1 -q --tag "n$i" >/dev/null
done
for run in $(seq 1 "$RUNS"); do
  timed "list:$SNAPSHOTS" "$mysnap" list --repo "$work/many"
  timed "list-json:$SNAPSHOTS" "$mysnap" list --repo "$work/many" --json
  timed "forget-dry-run:$SNAPSHOTS" "$mysnap" forget --repo "$work/many" --keep-last 10 --keep-daily 7 --dry-run
done

python3 - "$results" "$stored" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split()
    rows.setdefault(name, []).append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
print(f"{'step':<26}{'median s':>10}{'max RSS MiB':>13}  each run (s)")
for k, v in rows.items():
    each = " ".join(f"{s_:.2f}" for s_, _ in v)
    print(f"{k:<26}{med[k]:>10.2f}{max(r for _, r in v)/1024:>13.0f}  {each}")
def ratio(a, b, what):
    if a in med and b in med and med[b] > 0:
        print(f"{what}: {a} / {b} = {med[a]/med[b]:.3f}")
ratio("dump:repository", "dump:directory", "dump through the repository")
ratio("restore:repository", "restore:directory", "restore from the repository")
stored = int(sys.argv[2])
if "read:cat-objects" in med and "verify:repository" in med:
    disk = stored / med["read:cat-objects"] / 2**20
    ver = stored / med["verify:repository"] / 2**20
    print(f"snapshot objects: {stored/2**20:.0f} MiB; sequential read {disk:.0f} MiB/s; verify {ver:.0f} MiB/s = {ver/disk:.0%} of it")
PY
