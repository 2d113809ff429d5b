#!/usr/bin/env bash
# The main job on a fresh Debian machine: install MariaDB if missing, start a throwaway
# source server with the sample shop schema (and the fidelity fixture), dump it with
# mysnap, restore into a second throwaway server, and check both are identical with
# mariadb-dump (a tool-independent form). Everything lives in one temp dir, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }

work=$(mktemp -d /tmp/mysnap-demo.XXXXXX)
cleanup() { server_stop "$work/source"; server_stop "$work/target"; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet
mysnap=target/release/mysnap
src_port=$(free_port); server_start "$work/source" "$src_port"
dst_port=$(free_port); server_start "$work/target" "$dst_port"
echo "== loading fixtures into the source (127.0.0.1:$src_port)"
server_client "$work/source" < fixtures/sample.sql
server_client "$work/source" < fixtures/fidelity.sql >/dev/null

dbs=(shop fidelity fidelity_objects "odd db-ünï")
db_flags=(); for d in "${dbs[@]}"; do db_flags+=(--database "$d"); done
echo "== mysnap dump"
$mysnap dump -h 127.0.0.1 -P "$src_port" -u root "${db_flags[@]}" --output "$work/dump" --threads 4
$mysnap show "$work/dump"
echo "== mysnap restore into 127.0.0.1:$dst_port"
$mysnap restore "$work/dump" -h 127.0.0.1 -P "$dst_port" -u root --threads 4

echo "== comparing source and target with mariadb-dump --hex-blob"
canon() {
  mariadb-dump --no-defaults -uroot -S "$1/mysqld.sock" --skip-dump-date --skip-comments --order-by-primary \
    --hex-blob --default-character-set=binary --routines --triggers --events --databases "${dbs[@]}"
}
compare() {
  canon "$work/source" > "$work/source.sql"
  canon "$work/target" > "$work/target.sql"
  if cmp -s "$work/source.sql" "$work/target.sql"; then
    echo "IDENTICAL: $(wc -c < "$work/source.sql") bytes of mariadb-dump output match"
  else
    diff "$work/source.sql" "$work/target.sql" | head -40
    echo "DIFFERENT" >&2
    exit 1
  fi
}
compare

echo "== the same through a repository: init, dump, list, verify, restore latest --checksum"
$mysnap init --repo "$work/repo"
$mysnap dump -h 127.0.0.1 -P "$src_port" -u root "${db_flags[@]}" --repo "$work/repo" --threads 4 --tag demo -q
$mysnap list --repo "$work/repo"
$mysnap verify latest --repo "$work/repo"
for d in "${dbs[@]}"; do server_client "$work/target" -e "DROP DATABASE \`$d\`"; done
$mysnap restore latest --repo "$work/repo" -h 127.0.0.1 -P "$dst_port" -u root --threads 4 --checksum
compare
