#!/usr/bin/env bash
# CI's short fuzz pass: builds every target (so they keep compiling),
# replays each committed seed corpus (every seed must pass), then fuzzes
# each target for a few seconds (FUZZ_CI_SECONDS, default 3). New inputs
# go to a temporary folder; the committed corpus is never written.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_CI_SECONDS:-3}"
export RUSTC_BOOTSTRAP=1
# cargo-fuzz itself, from crates.io, on a machine that lacks it.
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version "${CARGO_FUZZ_VERSION:-0.13.2}" --locked
fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
cargo fuzz build --target-dir "$target_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in $(cargo fuzz list); do
  mkdir -p "$work/$t"
  # -runs=0 after loading: every seed executed once.
  cargo fuzz run --target-dir "$target_dir" "$t" "corpus/$t" -- -runs=0 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$work/" >"$work/$t.seeds.log" 2>&1 \
    || { cat "$work/$t.seeds.log"; echo "fuzz/ci.sh: a seed of $t fails"; exit 1; }
  cargo fuzz run --target-dir "$target_dir" "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$work/" >"$work/$t.log" 2>&1 \
    || { tail -50 "$work/$t.log"; echo "fuzz/ci.sh: $t crashed"; exit 1; }
  echo "fuzz/ci.sh: $t ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' | tail -1) runs)"
done
