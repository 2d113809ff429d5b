#!/usr/bin/env bash
# Throwaway MariaDB servers for the demo and benchmarks (the tests have their own
# harness in tests/support). Source this file, then:
#   server_start DIR PORT [extra mariadbd flags...]   # data, socket and logs under DIR
#   server_stop DIR
#   server_client DIR [mariadb args...]              # the stock client, as root over the socket

ensure_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "installing mariadb-server and mariadb-client" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  export PATH="$PATH:/usr/sbin"
}

server_start() {
  local dir=$1 port=$2; shift 2
  ensure_mariadb
  mkdir -p "$dir"
  local user_flag=()
  [ "$(id -u)" = 0 ] && user_flag=(--user=root)
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults "${user_flag[@]}" --datadir="$dir/data" \
      --auth-root-authentication-method=normal --skip-name-resolve --skip-test-db >"$dir/install.log" 2>&1 \
      || { cat "$dir/install.log" >&2; return 1; }
  fi
  mariadbd --no-defaults "${user_flag[@]}" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --log-bin="$dir/binlog" --server-id="$port" --binlog-format=ROW --local-infile=1 \
    --max-allowed-packet=256M --skip-name-resolve --character-set-server=utf8mb4 \
    --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 "$@" >>"$dir/mariadbd.out" 2>&1 &
  for _ in $(seq 1 120); do
    if mariadb --no-defaults -uroot -S "$dir/mysqld.sock" -e 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "server in $dir did not start:" >&2
  tail -20 "$dir/error.log" >&2
  return 1
}

server_stop() {
  local dir=$1
  [ -f "$dir/mysqld.pid" ] || return 0
  local pid; pid=$(cat "$dir/mysqld.pid")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
}

server_client() {
  local dir=$1; shift
  mariadb --no-defaults -uroot -S "$dir/mysqld.sock" "$@"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
