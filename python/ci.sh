#!/usr/bin/env bash
# CI for the Python package: a fresh virtual environment with pinned tools
# (requirements-ci.txt), the wheel built by maturin, installed, and the
# pytest suite (tests/, including a slice of examples/digits.py and the
# breach check against a real breach-server on loopback).
#
# Reuses the workspace's target directory ($CARGO_TARGET_DIR, else
# target/), so only the extension module is compiled after `cargo test`.
# PYTHON picks the interpreter (default python3, >= 3.9).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

echo "python/ci.sh: fresh venv in $tmp ($("$python" --version))"
"$python" -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install -r "$here/requirements-ci.txt"

# The server the breach-check tests start (a no-op after `cargo test`).
cargo build --release --quiet -p breach-server
export BREACH_SERVER_BIN="$CARGO_TARGET_DIR/release/breach-server"

"$tmp/venv/bin/maturin" build --release --quiet \
    --manifest-path "$here/Cargo.toml" \
    --interpreter "$tmp/venv/bin/python" \
    --out "$tmp/wheels"
"${pip[@]}" install --no-index --no-deps "$tmp"/wheels/breachcheck-*.whl

# From the temporary directory, so that `import breachcheck` is the
# installed wheel and not the source folder.
cd "$tmp"
"$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$here" "$here/tests"
echo "python/ci.sh: passed in $((SECONDS - start)) s"
