#!/usr/bin/env bash
# Installs what building and testing dcpilot needs on a fresh Debian machine with a Rust
# toolchain: a C toolchain for the bundled librdkafka, and cargo-nextest. Idempotent and
# quick when everything is present.
set -euo pipefail
need_apt=()
for tool in gcc g++ make perl pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  pkgs=()
  for t in "${need_apt[@]}"; do
    case "$t" in g++) pkgs+=(g++) ;; *) pkgs+=("$t") ;; esac
  done
  echo "installing ${pkgs[*]} (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest (crates.io)"
  cargo install cargo-nextest --locked
fi
# The standalone broker of the multi-process end-to-end test (tests/multiprocess_e2e.rs):
# nisshi, built once (~17-20 min on 2 cores) and skipped when already installed.
"$(dirname "$0")/../deploy/install-broker.sh"
