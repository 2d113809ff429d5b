#!/usr/bin/env bash
# The test command: installs what the tests need when missing, then runs formatting,
# lint and the whole test suite (unit tests and integration tests against throwaway
# mariadbd servers started by tests/support).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh
ensure_mariadb
command -v mariadb-install-db >/dev/null || { echo "mariadb-install-db missing after install" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
