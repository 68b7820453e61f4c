#!/usr/bin/env bash
# The project's one check: formatting, lints, the whole test suite. Developers and CI run
# exactly this (`.ci/run` calls it). Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests (nextest, dev profile)"
cargo nextest run --workspace --locked --no-fail-fast
# nextest does not run doctests.
cargo test --workspace --locked --doc
