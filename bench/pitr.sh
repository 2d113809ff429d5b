#!/usr/bin/env bash
# Point-in-time restore, side by side in one run:
#  1. `mysnap binlog archive` runs while `sysbench oltp_write_only` writes EVENTS
#     transactions: its lag behind the source (p50/p99/max, sampled every 100 ms from the
#     source's binlog file and the newest archived segment), its CPU and peak RSS;
#  2. the same archived events replayed onto the same restored snapshot by mysnap (the
#     target's parallel applier, and with --threads 1) and by `mariadb-binlog FILES |
#     mariadb`, with the end state checked identical to the source (CHECKSUM TABLE);
#  3. mysnap's full point-in-time restore (snapshot load + replay) and its ETA's error at
#     25/50/75 % of each phase.
#   bench/pitr.sh                                           # 200k transactions, 4 x 100k rows
#   EVENTS=20000 TABLES=2 ROWS=10000 bench/pitr.sh          # a quick smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
EVENTS=${EVENTS:-200000} TABLES=${TABLES:-4} ROWS=${ROWS:-100000} THREADS=${THREADS:-2}
REPLAY_THREADS=${REPLAY_THREADS:-4} RUNS=${RUNS:-1}
command -v sysbench >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
cargo build --release --quiet
mysnap=$PWD/target/release/mysnap

work=$(mktemp -d /var/tmp/mysnap-pitr-bench.XXXXXX)
cleanup() {
  [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null || true
  [ -n "${archiver:-}" ] && pkill -P "$archiver" 2>/dev/null || true
  server_stop "$work/src"; server_stop "$work/dst"; rm -rf "$work"
}
trap cleanup EXIT
src_port=$(free_port); server_start "$work/src" "$src_port" --innodb-buffer-pool-size=1G
dst_port=$(free_port); server_start "$work/dst" "$dst_port" --innodb-buffer-pool-size=1G --skip-log-bin
src=(-h 127.0.0.1 -P "$src_port" -u root)
dst=(-h 127.0.0.1 -P "$dst_port" -u root)
server_client "$work/src" -e "CREATE DATABASE sbtest"
echo "preparing sysbench: $TABLES tables x $ROWS rows; $(nproc) cores; work in $work"
sb=(sysbench oltp_write_only --db-driver=mysql --mysql-socket="$work/src/mysqld.sock" --mysql-user=root
    --mysql-db=sbtest --tables="$TABLES" --table-size="$ROWS")
"${sb[@]}" --threads=2 prepare >/dev/null
"$mysnap" init --repo "$work/repo" >/dev/null
id=$("$mysnap" dump "${src[@]}" -B sbtest --repo "$work/repo" -q)
read -r snap_file snap_pos < <("$mysnap" list --repo "$work/repo" --json | python3 -c '
import json, sys; b = json.load(sys.stdin)[0]["binlog"]; print(b["file"], b["position"])')
echo "snapshot $id at $snap_file:$snap_pos"

# The archiver, under time(1) for its CPU and peak RSS.
/usr/bin/time -f "%e %U %S %M" -o "$work/archiver.time" "$mysnap" binlog archive "${src[@]}" --repo "$work/repo" -q \
  2>"$work/archiver.err" &
archiver=$!
# Lag sampler: (time, source file, source size) and (time, archived file, end) every 100 ms.
python3 - "$work/src" "$work/repo" "$work/lag.tsv" <<'PY' &
import json, os, struct, sys, time
src, repo, out = sys.argv[1:]
seg = os.path.join(repo, "binlog", "segments")
with open(out, "w") as f:
    while True:
        now = time.time()
        try:
            name = open(os.path.join(src, "binlog.index")).read().split()[-1]
            name = os.path.basename(name)
            size = os.path.getsize(os.path.join(src, name))
            files = sorted(os.listdir(seg)) if os.path.isdir(seg) else []
            a_file, a_end = "", 0
            if files:
                with open(os.path.join(seg, files[-1]), "rb") as s:
                    head = s.read(12)
                    h = json.loads(s.read(struct.unpack("<I", head[8:12])[0]))
                a_file, a_end = (h["next_file"], 4) if h.get("next_file") else (h["file"], h["end"])
            f.write(f"{now:.3f}\t{name}\t{size}\t{a_file}\t{a_end}\n")
            f.flush()
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.1)
PY
sampler=$!
echo "running sysbench oltp_write_only: $EVENTS transactions on $THREADS threads"
start=$(date +%s.%N)
"${sb[@]}" --threads="$THREADS" --events="$EVENTS" --time=0 --report-interval=0 run >"$work/sysbench.out"
end=$(date +%s.%N)
read -r end_file end_pos < <(server_client "$work/src" -N -e "SHOW MASTER STATUS" | cut -f1,2)
# Wait for the archive to hold everything, then stop archiver and sampler.
for _ in $(seq 1 600); do
  last=$(tail -1 "$work/lag.tsv" | cut -f4,5)
  [ "$last" = "$(printf '%s\t%s' "$end_file" "$end_pos")" ] && break
  sleep 0.1
done
sleep 0.5
kill "$sampler"; sampler=
pkill -TERM -P "$archiver" || true; wait "$archiver" || true; archiver=
tps=$(grep -o 'transactions: *[0-9]* *([0-9.]* per sec' "$work/sysbench.out" | grep -o '([0-9.]*' | tr -d '(')
echo "source at $end_file:$end_pos; sysbench: $tps tps"

checksum() { server_client "$1" -N -e "CHECKSUM TABLE $(seq -s, -f 'sbtest.sbtest%g' 1 "$TABLES")" | cut -f2 | tr '\n' ' '; }
want=$(checksum "$work/src")
results=$work/results.tsv; : > "$results"
reset_target() { server_client "$work/dst" -e "DROP DATABASE IF EXISTS sbtest"; }
load_snapshot() { reset_target; "$mysnap" restore "$id" --repo "$work/repo" "${dst[@]}" -q; }
check() {
  local got; got=$(checksum "$work/dst")
  [ "$got" = "$want" ] || { echo "END STATE DIFFERS after $1: $got vs $want" >&2; exit 1; }
}
files=$(ls "$work/src"/binlog.[0-9]* | awk -v f="$work/src/$snap_file" '$0 >= f')
replay_mysnap() { # NAME THREADS
  # The whole point-in-time restore (load, then replay); its replay part is timed by
  # mysnap's own report of it.
  reset_target
  /usr/bin/time -f "%e %M" -o "$work/time" "$mysnap" restore --repo "$work/repo" --until-position "$end_file:$end_pos" \
    "${dst[@]}" --threads "$2" --progress json --progress-interval 0.5 >"$work/out" 2>"$work/progress-$1-$run.jsonl"
  local replay; replay=$(grep -o 'in [0-9.]* s, up to' "$work/out" | grep -o '[0-9.]*')
  echo "$1 $replay $(cut -d' ' -f2 "$work/time") $(cut -d' ' -f1 "$work/time")" >> "$results"
  check "$1"
}
replay_binlog() {
  load_snapshot
  /usr/bin/time -f "%e %M" -o "$work/time" sh -c "mariadb-binlog --start-position=$snap_pos $files | mariadb --no-defaults -uroot -S '$work/dst/mysqld.sock'"
  echo "mariadb-binlog $(cut -d' ' -f1 "$work/time") $(cut -d' ' -f2 "$work/time") $(cut -d' ' -f1 "$work/time")" >> "$results"
  check mariadb-binlog
}
for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS"
  if [ $((run % 2)) = 1 ]; then replay_mysnap mysnap "$REPLAY_THREADS"; replay_mysnap mysnap-1-thread 1; replay_binlog
  else replay_binlog; replay_mysnap mysnap-1-thread 1; replay_mysnap mysnap "$REPLAY_THREADS"; fi
done

python3 - "$results" "$work" "$start" "$end" "$EVENTS" <<'PY'
import glob, json, os, statistics, sys
results, work, start, end, events = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = {}
for line in open(results):
    name, replay, rss, total = line.split()
    rows.setdefault(name, []).append((float(replay), int(rss), float(total)))
med = {k: statistics.median(r for r, _, _ in v) for k, v in rows.items()}
print(f"\nreplay of {events} sysbench oltp_write_only transactions onto the same snapshot (state checked identical each time)")
print(f"{'tool':<18}{'replay s':>10}{'whole s':>10}{'max RSS MiB':>13}  each run (replay s)")
for k, v in rows.items():
    print(f"{k:<18}{med[k]:>10.2f}{statistics.median(t for _, _, t in v):>10.2f}{max(r for _, r, _ in v)/1024:>13.0f}  "
          + " ".join(f"{r:.2f}" for r, _, _ in v))
if "mariadb-binlog" in med and "mysnap" in med:
    print(f"mariadb-binlog | mariadb / mysnap = {med['mariadb-binlog'] / med['mysnap']:.2f}x"
          + (f"; / mysnap --threads 1 = {med['mariadb-binlog'] / med['mysnap-1-thread']:.2f}x" if "mysnap-1-thread" in med else ""))
# Archiver lag: for each source sample, when the archive first reached that place.
samples = [l.rstrip("\n").split("\t") for l in open(os.path.join(work, "lag.tsv"))]
samples = [(float(t), f, int(s), af, int(ae)) for t, f, s, af, ae in samples if af]
lags = []
for i, (t, f, s, _, _) in enumerate(samples):
    if not (start <= t <= end):
        continue
    for t2, _, _, af, ae in samples[i:]:
        if (af, ae) >= (f, s):
            lags.append(t2 - t)
            break
if lags:
    lags.sort()
    q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]
    print(f"archiver lag while sysbench ran ({len(lags)} samples, 100 ms apart): p50 {q(0.5):.2f} s, p99 {q(0.99):.2f} s, max {lags[-1]:.2f} s")
wall, user, sys_, rss = open(os.path.join(work, "archiver.time")).read().split()[-4:]
print(f"archiver: {float(user) + float(sys_):.1f} s CPU in {float(wall):.1f} s ({(float(user) + float(sys_)) / float(wall) * 100:.0f} % of one core), peak RSS {int(rss) / 1024:.0f} MiB")
for phase in ("restore", "replay"):
    per = {f: [] for f in (0.25, 0.50, 0.75)}
    for path in sorted(glob.glob(os.path.join(work, "progress-mysnap-*.jsonl"))):
        lines = [j for j in map(json.loads, filter(lambda l: l.startswith("{\"") and "phase" in l, open(path))) if j.get("phase") == phase]
        if not lines:
            continue
        final = lines[-1]
        for f in per:
            hit = next((j for j in lines if j["total_bytes"] and j["done_bytes"] >= f * j["total_bytes"]), None)
            actual = final["elapsed_s"] - hit["elapsed_s"] if hit else 0
            if actual > 0 and hit["eta_s"] is not None:
                per[f].append((hit["eta_s"] - actual) / actual * 100)
    print(f"ETA error, {phase} phase: " + ", ".join(
        f"at {int(f * 100)} % {statistics.median(v):+.0f} % ({len(v)} runs)" if v else f"at {int(f * 100)} % -" for f, v in per.items()))
PY
