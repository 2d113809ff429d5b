#!/usr/bin/env bash
# Restore times of mysnap against a floor (the server's own LOAD DATA INFILE of the same
# row text, then the secondary indexes), myloader and `mariadb < dump.sql`, on two
# datasets: sysbench tables of equal size, and one big table beside many small ones.
# Also checks mysnap's ETA against what actually happened. See bench/README.md.
#   bench/restore.sh                                     # 8 x 500k rows, 500 small tables
#   ROWS=20000 SMALL_TABLES=50 RUNS=1 bench/restore.sh   # a quick smoke run
#   KEEP_PROGRESS=/tmp/eta bench/restore.sh              # also keep mysnap's JSON progress lines
set -euo pipefail
# A directory to keep mysnap's JSON progress lines in, relative to where we were started.
KEEP_PROGRESS=${KEEP_PROGRESS:+$(realpath -m "$KEEP_PROGRESS")}
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
TABLES=${TABLES:-8} ROWS=${ROWS:-500000} SMALL_TABLES=${SMALL_TABLES:-500}
THREADS=${THREADS:-2} RUNS=${RUNS:-3}
for tool in sysbench mydumper myloader zstdcat; do
  command -v $tool >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench mydumper zstd >/dev/null; break; }
done
cargo build --release --quiet
mysnap=$PWD/target/release/mysnap

work=$(mktemp -d /tmp/mysnap-restore-bench.XXXXXX)
cleanup() { server_stop "$work/src"; server_stop "$work/dst"; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/floor" "$work/dumps" "$work/progress"
# The target reads the floor's files itself (LOAD DATA INFILE, not LOCAL), and only from
# the directory secure-file-priv names. No binlog on the target, so no tool pays for one.
src_port=$(free_port); server_start "$work/src" "$src_port" --innodb-buffer-pool-size=2G
dst_port=$(free_port); server_start "$work/dst" "$dst_port" --innodb-buffer-pool-size=2G \
  --skip-log-bin --secure-file-priv="$work/floor"
src=(-h 127.0.0.1 -P "$src_port" -u root)
dst=(-h 127.0.0.1 -P "$dst_port" -u root)
# Every client on the target goes over TCP, as mysnap and myloader do.
dst_client() { mariadb --no-defaults "${dst[@]}" "$@"; }

sysbench_prepare() { # DB TABLES ROWS
  sysbench oltp_read_write --db-driver=mysql --mysql-socket="$work/src/mysqld.sock" --mysql-user=root \
    --mysql-db="$1" --tables="$2" --table-size="$3" --threads=2 prepare >/dev/null
}

prepare_sbtest() {
  server_client "$work/src" -e "CREATE DATABASE sbtest"
  sysbench_prepare sbtest "$TABLES" "$ROWS"
}

# One table with most of the bytes and many tiny ones: what the scheduler and the ETA find
# hardest (one table cannot be shared by naive per-table loaders; the tiny ones are all
# per-table overhead). The big one is made by sysbench in a scratch db, then moved.
prepare_skewed() {
  server_client "$work/src" -e "CREATE DATABASE skewed; CREATE DATABASE skewed_scratch"
  sysbench_prepare skewed "$SMALL_TABLES" 100
  sysbench_prepare skewed_scratch 1 $((ROWS * 6))
  server_client "$work/src" -e "RENAME TABLE skewed_scratch.sbtest1 TO skewed.big; DROP DATABASE skewed_scratch"
}

# The floor's inputs, from mysnap's dump: plain row text the target may read, a schema
# without secondary indexes, and per-session scripts of LOAD DATA INFILE then ALTER TABLE.
prepare_floor() { # DB
  python3 - "$1" "$work/dumps/$1/mysnap" "$work/floor/$1" "$THREADS" <<'PY'
import json, os, re, subprocess, sys
db, dump, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.makedirs(out)
m = json.load(open(os.path.join(dump, "manifest.json")))
q = lambda s: "`" + s.replace("`", "``") + "`"
settings = "SET SESSION foreign_key_checks=0, unique_checks=0, time_zone='+00:00', sql_mode='NO_AUTO_VALUE_ON_ZERO';\n"
schema, files, alters = [f"CREATE DATABASE {q(db)};\nUSE {q(db)};\n"], [], []
secondary = re.compile(r"^\s*(UNIQUE |FULLTEXT |SPATIAL )?KEY ")
for t in (t for d in m["databases"] if d["name"] == db for t in d["tables"]):
    # The same session settings and column list as mysnap's loader; sysbench has raw columns only.
    assert all(c["encoding"] == "raw" for c in t["columns"]), t["name"]
    lines = t["create_sql"].split("\n")
    keys = [l.strip().rstrip(",") for l in lines if secondary.match(l)]
    body = [l for l in lines if not secondary.match(l)]
    close = next(i for i, l in enumerate(body) if l.startswith(")"))
    body[close - 1] = body[close - 1].rstrip(",")
    schema.append("\n".join(body) + ";\n")
    if keys:
        alters.append((t["raw_bytes"], f"ALTER TABLE {q(db)}.{q(t['name'])} " + ", ".join("ADD " + k for k in keys) + ";\n"))
    cols = ",".join(q(c["name"]) for c in t["columns"])
    for f in t["files"]:
        path = os.path.join(out, os.path.basename(f["path"]).rsplit(".", 1)[0])
        with open(path, "wb") as w:
            subprocess.run(["zstdcat", os.path.join(dump, f["path"])], stdout=w, check=True)
        files.append((f["raw_bytes"], f"LOAD DATA INFILE '{path}' INTO TABLE {q(db)}.{q(t['name'])} CHARACTER SET binary ({cols});\n"))
open(os.path.join(out, "schema.sql"), "w").write("".join(schema))
# Largest first, round robin over the sessions, as mysnap schedules its files.
for kind, items in (("load", files), ("index", alters)):
    items.sort(key=lambda w: -w[0])
    for k in range(threads):
        open(os.path.join(out, f"{kind}-{k}.sql"), "w").write(settings + "".join(s for _, s in items[k::threads]))
PY
}

dump_all() { # DB
  local d=$work/dumps/$1
  mkdir -p "$d"
  "$mysnap" dump "${src[@]}" --database "$1" --output "$d/mysnap" --threads "$THREADS" -q
  # mydumper warns on stderr that --trx-consistency-only trusts every table to be InnoDB: they are.
  mydumper "${src[@]}" -B "$1" -o "$d/mydumper" -t "$THREADS" --trx-consistency-only 2>"$d/mydumper.log" \
    || { cat "$d/mydumper.log" >&2; exit 1; }
  mariadb-dump --no-defaults "${src[@]}" --single-transaction --quick "$1" > "$d/dump.sql"
  prepare_floor "$1"
}

results=$work/results.tsv
: > "$results"
# timed DB TOOL RUN STDIN STDERR CMD...: appends "DB TOOL RUN seconds maxrss_kb" to the
# results. %M is the largest RSS of any one process waited for: the tool, or the client.
timed() {
  local db=$1 tool=$2 run=$3 in=$4 err=$5; shift 5
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" <"$in" >"$work/out.log" 2>"$err" \
    || { cat "$work/out.log" "$err" >&2; echo "$tool failed on $db (run $run)" >&2; exit 1; }
  echo "$db $tool $run $(cat "$work/time")" >> "$results"
}

# The floor's timed body: schema, then the loads in parallel, then the ALTERs in parallel.
# Two sessions loading one table can deadlock (InnoDB ERROR 1213): a statement that does
# is retried, as mysnap retries a file.
floor_body='set -e; d=$1; shift
mariadb --no-defaults "$@" < "$d/schema.sql"
session() { # FILE CONNECTION...: the file has the settings, then one statement a line
  local file=$1 settings stmt try; shift; settings=$(head -1 "$file")
  tail -n +2 "$file" | while IFS= read -r stmt; do
    for try in 1 2 3 4 5; do
      if mariadb --no-defaults "$@" -e "$settings $stmt" 2>"$file.err"; then break; fi
      grep -q "ERROR 1213" "$file.err" && [ "$try" -lt 5 ] || { cat "$file.err" >&2; exit 1; }
    done
  done
}
for phase in load index; do
  pids=(); for f in "$d"/$phase-*.sql; do session "$f" "$@" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
done'

run_floor() { # DB RUN
  timed "$1" floor "$2" /dev/null "$work/err.log" bash -c "$floor_body" _ "$work/floor/$1" "${dst[@]}"
}

checksums() { # SERVER_DIR DB: CHECKSUM TABLE of every base table, as "db.table checksum" lines
  local tables
  tables=$(server_client "$work/src" -N -e "SELECT CONCAT('\`', TABLE_SCHEMA, '\`.\`', TABLE_NAME, '\`')
    FROM information_schema.TABLES WHERE TABLE_SCHEMA='$2' AND TABLE_TYPE='BASE TABLE'" | paste -sd,)
  server_client "$1" -N -e "CHECKSUM TABLE $tables" | sort
}

# Once per dataset, prove the restore is the source, table by table (the floor too, so
# that it is a real restore and not a cheaper one).
same_as_source() { # DB TOOL
  diff <(checksums "$work/src" "$1") <(checksums "$work/dst" "$1") >&2 \
    || { echo "CHECKSUM TABLE differs between the source and $2's restore of $1" >&2; exit 1; }
  echo "  $1: CHECKSUM TABLE of every table after $2 matches the source"
}

run_tool() { # DB TOOL RUN
  local db=$1 tool=$2 run=$3
  dst_client -e "DROP DATABASE IF EXISTS \`$db\`"
  case $tool in
    floor) run_floor "$db" "$run"
      if [ "$run" = 1 ]; then same_as_source "$db" floor; fi ;;
    mysnap)
      timed "$db" mysnap "$run" /dev/null "$work/progress/$db-$run.jsonl" "$mysnap" restore "$work/dumps/$db/mysnap" \
        "${dst[@]}" --threads "$THREADS" --progress json --progress-interval 0.5 --skip-binlog
      if [ "$run" = 1 ]; then same_as_source "$db" mysnap; fi
      # A finished restore removes its journal; one left behind would make the next one refuse.
      [ -z "$(dst_client -N -e "SHOW DATABASES LIKE 'mysnap'")" ] \
        || echo "  WARNING: mysnap left its journal schema on the target after run $run" >&2 ;;
    myloader)
      timed "$db" myloader "$run" /dev/null "$work/err.log" myloader "${dst[@]}" -d "$work/dumps/$db/mydumper" -t "$THREADS" ;;
    mariadb) # the dump names no database (no --databases): create it first, untimed
      dst_client -e "CREATE DATABASE \`$db\`"
      timed "$db" mariadb "$run" "$work/dumps/$db/dump.sql" "$work/err.log" mariadb --no-defaults "${dst[@]}" "$db" ;;
  esac
}

report() {
  echo
  echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(mariadbd --version)"
  echo "parameters: TABLES=$TABLES ROWS=$ROWS SMALL_TABLES=$SMALL_TABLES THREADS=$THREADS RUNS=$RUNS"
  python3 - "$results" "$work/progress" "$work/dumps" <<'PY'
import glob, json, os, statistics, sys
results, progress, dumps = sys.argv[1:4]
rows = {}
for line in open(results):
    db, tool, run, secs, rss = line.split()
    rows.setdefault(db, {}).setdefault(tool, []).append((float(secs), int(rss)))
for db, tools in rows.items():
    m = json.load(open(os.path.join(dumps, db, "mysnap", "manifest.json")))["totals"]
    print(f"\n{db}: {m['tables']} tables, {m['rows']} rows, {m['raw_bytes'] / 2**20:.0f} MiB of row text")
    med = {t: statistics.median(s for s, _ in v) for t, v in tools.items()}
    print(f"  {'tool':<10}{'median s':>10}{'/ floor':>9}{'/ myloader':>12}{'max RSS MiB':>13}")
    for t, v in tools.items():
        print(f"  {t:<10}{med[t]:>10.2f}{med[t] / med['floor']:>9.2f}{med[t] / med['myloader']:>12.2f}"
              f"{max(r for _, r in v) / 1024:>13.0f}")
    per = {f: [] for f in (0.10, 0.25, 0.50, 0.75)}
    for path in sorted(glob.glob(os.path.join(progress, db + "-*.jsonl"))):
        lines = [j for j in map(json.loads, open(path)) if j.get("phase") == "restore"]
        final = lines[-1]
        # The final line must account for everything the manifest holds.
        if (final["done_bytes"], final["rows"], final["tables_done"]) != (final["total_bytes"], m["rows"], m["tables"]):
            print(f"  WARNING {os.path.basename(path)}: final line {json.dumps(final)}")
        for f in per:
            hit = next((j for j in lines if j["done_bytes"] >= f * j["total_bytes"]), None)
            actual = final["elapsed_s"] - hit["elapsed_s"] if hit else 0
            if actual > 0 and hit["eta_s"] is not None:  # a line at the very end predicts nothing
                per[f].append((hit["eta_s"], actual, (hit["eta_s"] - actual) / actual * 100))
    print(f"  mysnap ETA  {'predicted s':>12}{'actual s':>10}{'error %':>9}{'runs':>6}  error % of each run")
    for f, v in per.items():
        if v:
            p, a, e = (statistics.median(x[i] for x in v) for i in range(3))
            each = " ".join(f"{x[2]:+.1f}" for x in v)
            print(f"  at {f * 100:>3.0f}%    {p:>12.1f}{a:>10.1f}{e:>9.0f}{len(v):>6}  {each}")
        else:
            print(f"  at {f * 100:>3.0f}%    {'-':>12}{'-':>10}{'-':>9}{0:>6}  (no line with an ETA before the end)")
PY
}

echo "preparing sbtest: $TABLES tables x $ROWS rows; skewed: 1 x $((ROWS * 6)) rows + $SMALL_TABLES x 100 rows"
prepare_sbtest
prepare_skewed
for db in sbtest skewed; do
  echo "dumping $db with mysnap, mydumper and mariadb-dump; decompressing the floor's files"
  dump_all "$db"
done
tools=(floor mysnap myloader mariadb)
for db in sbtest skewed; do
  for run in $(seq 1 "$RUNS"); do
    echo "$db: run $run/$RUNS"
    # A different tool goes first in each run, so that none always meets a warmed-up server.
    for i in "${!tools[@]}"; do
      run_tool "$db" "${tools[$(( (i + run - 1) % ${#tools[@]} ))]}" "$run"
    done
  done
  dst_client -e "DROP DATABASE IF EXISTS \`$db\`"
done
report
if [ -n "$KEEP_PROGRESS" ]; then mkdir -p "$KEEP_PROGRESS" && cp "$work"/progress/*.jsonl "$KEEP_PROGRESS"/; fi
