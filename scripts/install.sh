#!/usr/bin/env bash
# Installs mysnap the Debian way: the release binary, its manual pages, shell
# completions and (with SYSTEMD=1) the systemd units, under PREFIX (default /usr/local).
#   sudo bash scripts/install.sh                       # binary, man pages, completions
#   sudo SYSTEMD=1 bash scripts/install.sh             # and the units in /etc/systemd/system
#   DESTDIR=/tmp/pkg PREFIX=/usr bash scripts/install.sh   # into a staging tree (packaging)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local} DESTDIR=${DESTDIR:-}
root="$DESTDIR$PREFIX"
cargo build --release --locked --quiet
bin=target/release/mysnap
install -d "$root/bin" "$root/share/man/man1" "$DESTDIR/usr/share/bash-completion/completions" \
  "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$root/bin/mysnap"
man=$(mktemp -d); trap 'rm -rf "$man"' EXIT
"$bin" man --output "$man" >/dev/null
for page in "$man"/*.1; do
  gzip -9n < "$page" > "$root/share/man/man1/$(basename "$page").gz"
  chmod 0644 "$root/share/man/man1/$(basename "$page").gz"
done
"$bin" completions bash > "$DESTDIR/usr/share/bash-completion/completions/mysnap"
"$bin" completions zsh > "$root/share/zsh/site-functions/_mysnap"
"$bin" completions fish > "$root/share/fish/vendor_completions.d/mysnap.fish"
if [ "${SYSTEMD:-0}" = 1 ]; then
  install -d "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/mysnap"
  for unit in contrib/systemd/*.service contrib/systemd/*.timer; do
    sed "s|/usr/local/bin/mysnap|$PREFIX/bin/mysnap|" "$unit" > "$DESTDIR/etc/systemd/system/$(basename "$unit")"
  done
  [ -e "$DESTDIR/etc/mysnap/mysnap.env" ] || install -m 0644 contrib/systemd/mysnap.env "$DESTDIR/etc/mysnap/mysnap.env"
  echo "units installed; create the mysnap user and /etc/mysnap/my.cnf (mode 0600), then:"
  echo "  systemctl daemon-reload && systemctl enable --now mysnap-binlog-archive.service mysnap-snapshot.timer"
fi
echo "installed mysnap into $root"
