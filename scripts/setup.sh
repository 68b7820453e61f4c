#!/usr/bin/env bash
# Installs what building and testing dcpilot needs on a fresh Debian machine with a Rust
# toolchain: a C toolchain and the TLS/compression headers for the bundled librdkafka,
# rustfmt/clippy, cargo-nextest, Debian's `prometheus` (its promtool checks /metrics in a
# test), `stunnel4` (TLS in front of the test broker), `hwloc` (lstopo) and
# `kubernetes-client` (kubectl) whose real output the landscape tests read, `chromium`
# (the landscape page is tested in it, headless), and the
# standalone broker of the end-to-end tests. Idempotent, and quick when everything is
# present.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

# command or file that shows a package is there -> the Debian package
declare -A need=(
  [gcc]=gcc [g++]=g++ [make]=make [perl]=perl [pkg-config]=pkg-config
  [/usr/include/openssl/ssl.h]=libssl-dev [/usr/include/zlib.h]=zlib1g-dev
  [/etc/ssl/certs/ca-certificates.crt]=ca-certificates [promtool]=prometheus
  [openssl]=openssl [stunnel4]=stunnel4 [lstopo]=hwloc [kubectl]=kubernetes-client
  [chromium]=chromium
)
missing=()
for probe in "${!need[@]}"; do
  case "$probe" in
    /*) [ -e "$probe" ] || missing+=("${need[$probe]}") ;;
    *) command -v "$probe" >/dev/null 2>&1 || missing+=("${need[$probe]}") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt)"
  $SUDO apt-get update -qq
  # prometheus would start its server as a service: the tests only need promtool.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
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
# The standalone broker of the end-to-end tests (tests/multiprocess_e2e.rs,
# tests/kafka_codecs_security.rs): nisshi, built once (~17-20 min on 2 cores) and skipped
# when already installed.
"$(dirname "$0")/../deploy/install-broker.sh"
