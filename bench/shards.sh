#!/usr/bin/env bash
# Sharded deployment benchmark: N shards of one corpus behind a front,
# against one server holding the whole corpus, in the same run.
#
#   bench/shards.sh CORPUS_DIR [SHARDS] [RUNS]
#
# CORPUS_DIR holds combo.txt, hibp.txt and vault.csv as written by
# `cargo run --release -p breach-bench -- --keep` (target/breach-bench/
# pairs-N/), and, optionally, store/ with that corpus already imported and
# built (the single server; built here if missing). Work files go to
# CORPUS_DIR/shards-N/ (reused when present). Prints a Markdown table:
# import and build time per shard, each shard's peak RSS, and the median
# time of a vault check and of a password check through the front, against
# the single server, through a front over the single server (the front's
# own cost), and against shard 0 alone.
set -euo pipefail
corpus=$(cd "$1" && pwd)
shards=${2:-4}
runs=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -p breach-server -p breach-client --manifest-path "$root/Cargo.toml" >&2
B=$root/target/release/breach-server
C=$root/target/release/breach-client
work=$corpus/shards-$shards
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# Items per shard: the largest collection's share plus 10 %.
pairs=$(wc -l < "$corpus/combo.txt")
expected=$(( pairs * 11 / 10 / shards ))

[ -d "$work/keys" ] || "$B" keygen --out "$work/keys" >&2
declare -A import_s build_s
for i in $(seq 0 $((shards - 1))); do
    store=$work/shard-$i
    if [ ! -f "$store/psi/passwords.senderdb" ]; then
        t=$(now)
        "$B" import --store "$store" --shard "$i/$shards" "$corpus/combo.txt" "$corpus/hibp.txt" >&2
        import_s[$i]=$(since "$t")
        t=$(now)
        "$B" build --store "$store" --keys "$work/keys" --expected-items "$expected" >&2
        build_s[$i]=$(since "$t")
    else
        import_s[$i]="(kept)"; build_s[$i]="(kept)"
    fi
done
if [ ! -f "$corpus/store/psi/passwords.senderdb" ]; then
    "$B" import --store "$corpus/store" "$corpus/combo.txt" "$corpus/hibp.txt" >&2
    "$B" build --store "$corpus/store" >&2
fi

# Starts `breach-server ARGS`; sets $addr from its `ready on` line.
start() {
    local log=$1; shift
    local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
    "$B" "$@" > "$fifo" 2> "$log" &
    pids+=($!)
    addr=""
    while read -r line; do
        case $line in "ready on "*) addr=${line#ready on }; break ;; esac
    done < "$fifo"
    rm -f "$fifo"
    [ -n "$addr" ] || { echo "$* did not start; see $log" >&2; exit 1; }
}

declare -a shard_pid shard_url
for i in $(seq 0 $((shards - 1))); do
    start "$work/shard-$i.log" serve --store "$work/shard-$i" --listen 127.0.0.1:0 \
        --client-ip-header x-forwarded-for --oprf-rate 1000000 --global-oprf-rate 1000000 \
        --query-rate 100000 --query-burst 1000
    shard_pid[$i]=${pids[-1]}
    shard_url[$i]=http://$addr
done
front_args=()
for u in "${shard_url[@]}"; do front_args+=(--shard "$u"); done
start "$work/front.log" front --listen 127.0.0.1:0 "${front_args[@]}" \
    --oprf-rate 1000000 --global-oprf-rate 1000000 --query-rate 100000 --query-burst 1000
front_url=http://$addr
start "$work/single.log" serve --store "$corpus/store" --listen 127.0.0.1:0 \
    --oprf-rate 1000000 --global-oprf-rate 1000000 --query-rate 100000 --query-burst 1000
single_pid=${pids[-1]}
single_url=http://$addr
# The front alone: in front of the single server (one shard of one).
start "$work/front1.log" front --listen 127.0.0.1:0 --shard "$single_url" \
    --oprf-rate 1000000 --global-oprf-rate 1000000 --query-rate 100000 --query-burst 1000
front1_url=http://$addr

password=$(awk -F, 'NR == 2 { print $4 }' "$corpus/vault.csv")

# Median wall seconds of `breach-client ARGS` over $runs runs (exit 0 or 1).
median() {
    local times=()
    for _ in $(seq "$runs"); do
        local t; t=$(now)
        local rc=0
        "$C" "$@" < <(printf '%s\n' "$password") > /dev/null || rc=$?
        [ "$rc" -le 1 ] || { echo "breach-client $* failed ($rc)" >&2; exit 1; }
        times+=("$(since "$t")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
# Same answers everywhere, first.
"$C" check --json --server "$front_url" "$corpus/vault.csv" > "$work/front.json" || true
"$C" check --json --server "$single_url" "$corpus/vault.csv" > "$work/single.json" || true
cmp -s "$work/front.json" "$work/single.json" || { echo "the front's answer differs from the single server's" >&2; exit 1; }

declare -A t
for target in front single front1 shard0; do
    case $target in
        front) url=$front_url ;; single) url=$single_url ;; front1) url=$front1_url ;;
        shard0) url=${shard_url[0]} ;;
    esac
    t[$target-vault]=$(median check --server "$url" "$corpus/vault.csv")
    t[$target-password]=$(median check-password --server "$url")
done
hwm() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }

echo "| | front over $shards shards | single server | front over the single server | shard 0 alone |"
echo "| --- | --- | --- | --- | --- |"
echo "| vault check ($(($(wc -l < "$corpus/vault.csv") - 1)) entries), median s | ${t[front-vault]} | ${t[single-vault]} | ${t[front1-vault]} | ${t[shard0-vault]} |"
echo "| password check, median s | ${t[front-password]} | ${t[single-password]} | ${t[front1-password]} | ${t[shard0-password]} |"
echo "| server peak RSS, MiB | $(for i in $(seq 0 $((shards - 1))); do printf '%s ' "$(hwm "${shard_pid[$i]}")"; done)(per shard) | $(hwm "$single_pid") | | $(hwm "${shard_pid[0]}") |"
echo
echo "| shard | import s | build s | items per shard sized for |"
echo "| --- | --- | --- | --- |"
for i in $(seq 0 $((shards - 1))); do
    echo "| $i | ${import_s[$i]} | ${build_s[$i]} | $expected |"
done
echo
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; $runs runs each"
