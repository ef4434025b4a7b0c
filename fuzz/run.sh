#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints, per
# target, the executions, the coverage reached and whether it crashed.
#
#   fuzz/run.sh 600            # ten minutes a target
#   JOBS=2 fuzz/run.sh 600     # two targets at a time
#   fuzz/run.sh 60 he_keys     # only the named targets
#
# Built with the stable toolchain (RUSTC_BOOTSTRAP=1 unlocks the nightly
# flags cargo-fuzz passes); needs `cargo install cargo-fuzz`. New inputs
# go to fuzz/work/<target> (not committed); the committed seeds in
# fuzz/corpus/<target> are read, never written. A crash leaves its input
# in fuzz/artifacts/<target>/ and makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
cargo fuzz build --target-dir "$target_dir" >/dev/null 2>&1 || cargo fuzz build --target-dir "$target_dir"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
mkdir -p logs
run_one() {
  local t="$1"
  mkdir -p "work/$t" "artifacts/$t"
  # -rss_limit_mb / -malloc_limit_mb: an allocation a decoder makes before
  # checking its input is a crash, not a slow run.
  if cargo fuzz run --target-dir "$target_dir" "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -timeout=30 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
      >"logs/$t.log" 2>&1; then
    echo ok >"logs/$t.status"
  else
    echo CRASH >"logs/$t.status"
  fi
}
export -f run_one
export seconds target_dir
printf '%s\n' "${targets[@]}" | xargs -P "${JOBS:-1}" -I{} bash -c 'run_one {}'
status=0
printf '%-18s %14s %10s %8s %s\n' target executions exec/s cov result
for t in "${targets[@]}"; do
  log="logs/$t.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  result=$(cat "logs/$t.status")
  [ "$result" = ok ] || status=1
  printf '%-18s %14s %10s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "$result"
done
exit $status
