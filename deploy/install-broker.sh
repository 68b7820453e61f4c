#!/usr/bin/env bash
# Installs and (with --start) starts a standalone Kafka-compatible broker on loopback, for
# users without Kafka and for the multi-process end-to-end test: nisshi 0.8.1 (crates.io,
# formerly tansu), built from source with in-memory and SQLite storage.
#
#   deploy/install-broker.sh                 # install only (skipped when present)
#   deploy/install-broker.sh --start [PORT]  # install, then run on 127.0.0.1:PORT (9092)
#
# The first build takes ~31 CPU-minutes (~17-20 min on 2 cores); later runs skip it when
# `nisshi --version` already reports 0.8.1. Installs under $NISSHI_ROOT
# (default ~/.local/nisshi), outside the repository.
set -euo pipefail
VERSION=0.8.1
ROOT="${NISSHI_ROOT:-$HOME/.local/nisshi}"
BIN="$ROOT/bin/nisshi"

if "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "nisshi $VERSION present at $BIN"
else
  echo "building nisshi $VERSION into $ROOT (about 17-20 minutes on 2 cores)..."
  # --ignore-rust-version: a dependency declares Rust 1.96; it builds and runs on 1.95.
  cargo install nisshi --version "$VERSION" --locked --ignore-rust-version \
    --no-default-features --features dynostore,libsql --root "$ROOT"
fi

if [ "${1:-}" = "--start" ]; then
  PORT="${2:-9092}"
  echo "starting nisshi on 127.0.0.1:$PORT (in memory; Ctrl-C stops it)"
  exec "$BIN" broker \
    --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://nisshi/ --group-initial-rebalance-delay 0s
fi
