#!/usr/bin/env bash
# The 1,000,000-event workload (100,000 contacts, lead nurturing) run with
# and without `--state` (a new state each time), in N paired runs: the
# minimum and median wall time of each, their ratio, and the peak memory.
#
#   bash benches/state_throughput.sh [N]     (default 9)
#
# The program is the lead-nurturing example over the shared schema without
# its quiet hours and frequency cap (the workload the figures in
# docs/PERFORMANCE.md were first measured on); CALENDAR_RULES=1 keeps them
# (each email then changes its contact's stored state: the cap's window).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-9}
cargo build --release --quiet --bin nurture --example nurture-gen
bin=target/release/nurture
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/release/examples/nurture-gen 100000 1000000 42 > "$dir/events.jsonl"
mkdir "$dir/prog"
cp examples/lead_nurturing.flow "$dir/prog/"
if [ "${CALENDAR_RULES:-0}" = 1 ]; then
  cp examples/00_schema.flow "$dir/prog/"
else
  grep -v '^quiet hours\|^limit ' examples/00_schema.flow > "$dir/prog/00_schema.flow"
fi
without=(); with=(); mem_without=0; mem_with=0
for _ in $(seq "$n"); do
  /usr/bin/time -o "$dir/t" -f "%e %M" "$bin" run "$dir/prog" --events "$dir/events.jsonl" > /dev/null 2>&1
  read -r t m < "$dir/t"; without+=("$t"); mem_without=$m
  rm -f "$dir"/state.db*
  /usr/bin/time -o "$dir/t" -f "%e %M" "$bin" run "$dir/prog" --events "$dir/events.jsonl" --state "$dir/state.db" > /dev/null 2>&1
  read -r t m < "$dir/t"; with+=("$t"); mem_with=$m
done
python3 - "${without[*]}" "${with[*]}" "$mem_without" "$mem_with" <<'PY'
import statistics as st, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
print(f"without --state: min {min(a):.2f} s, median {st.median(a):.2f} s, peak {int(sys.argv[3]) // 1024} MiB")
print(f"with --state:    min {min(b):.2f} s, median {st.median(b):.2f} s, peak {int(sys.argv[4]) // 1024} MiB")
print(f"throughput with --state: {min(a) / min(b):.0%} of without (minimums), {st.median(a) / st.median(b):.0%} (medians)")
PY
