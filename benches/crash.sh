#!/usr/bin/env bash
# The long crash test: a `--state --out --drain` run over a generated
# workload, killed with SIGKILL at KILLS random moments (each time started
# again with the same command), then run to its end; the output file and
# `inspect --format json` must equal an uninterrupted run's.
#
#   bash benches/crash.sh [KILLS] [CONTACTS] [EVENTS]     (defaults: 100 20000 200000)
#
# Checkpoints come every 20,000 events (NURTURE_CHECKPOINT_EVENTS), so most
# kills land after several.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-100}; contacts=${2:-20000}; events=${3:-200000}
cargo build --release --quiet --bin nurture --example nurture-gen
bin=target/release/nurture
export NURTURE_CHECKPOINT_EVENTS=20000
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/release/examples/nurture-gen "$contacts" "$events" 7 > "$dir/events.jsonl"
run() { "$bin" run examples --events "$dir/events.jsonl" --state "$1" --out "$2" --drain > /dev/null 2>&1; }
start=$(date +%s.%N)
run "$dir/ref.db" "$dir/ref.out"
full=$(echo "$(date +%s.%N) - $start" | bc)
echo "uninterrupted run: ${full}s, $(wc -c < "$dir/ref.out") bytes of output"
n=0
while [ "$n" -lt "$kills" ]; do
  "$bin" run examples --events "$dir/events.jsonl" --state "$dir/crash.db" --out "$dir/crash.out" --drain > /dev/null 2>&1 &
  pid=$!
  sleep "$(echo "scale=3; $RANDOM % 1000 / 1000 * $full" | bc)"
  if kill -9 "$pid" 2> /dev/null; then
    n=$((n + 1))
    wait "$pid" 2> /dev/null || true
  else
    # It finished before the kill: start over, so every kill lands in a run.
    wait "$pid" 2> /dev/null || true
    rm -f "$dir"/crash.db* "$dir/crash.out"
  fi
done
run "$dir/crash.db" "$dir/crash.out"
cmp "$dir/ref.out" "$dir/crash.out"
diff <("$bin" inspect --format json --state "$dir/ref.db") <("$bin" inspect --format json --state "$dir/crash.db")
echo "after $kills kills: output and state identical"
