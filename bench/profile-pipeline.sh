#!/bin/bash
# Where the pipeline's CPU goes: `encompass-bench pipeline` with perf record (cpu-clock samples,
# frame-pointer call graphs) of the bench process during the durable relay phase, and of the
# embedded broker and the five services during the throughput phase. Then a summary per process
# (bench/profile_summary.py). docs/BENCHMARKS.md, "Where the CPU goes (profile)".
#
# Usage: bench/profile-pipeline.sh OUTDIR [bench pipeline options...]
#   e.g. bench/profile-pipeline.sh /tmp/profile --incidents 20000 --paced 0 --base-port 43081
# BUILD names the folder of the release executables (default .build/release). Needs perf.
# The raw samples stay in OUTDIR (relay.perf, pipeline.perf, and their demangled stacks).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-$ROOT/.build/release}" && pwd)
OUT=$1; shift
BIN=$OUT/bin
rm -rf "$OUT"; mkdir -p "$BIN"
# The bench starts the services from the folder its own executable is in: wrappers there note
# each process id, then run the real executable under the wrapper's name.
for exe in encompass-bench encompass intake child-research school-resolution scheduling dispatch console; do
  printf '#!/bin/bash\necho "%s $$" >> %s/pids\nexec -a %s/%s %s/%s "$@"\n' "$exe" "$OUT" "$BIN" "$exe" "$BUILD" "$exe" > "$BIN/$exe"
  chmod +x "$BIN/$exe"
done
cd "$ROOT"
stdbuf -oL "$BIN/encompass-bench" pipeline --dir "$OUT/run" "$@" 2>"$OUT/bench.err" | while IFS= read -r line; do
  echo "$line"
  case "$line" in
    "raw 5-hop relay"*)
      bench=$(head -1 "$OUT/pids" | cut -d' ' -f2)
      perf record -F 499 -g -p "$bench" -o "$OUT/relay.perf" >/dev/null 2>"$OUT/perf-relay.err" & echo $! > "$OUT/perf.pid";;
    "durable 5-hop relay"*) kill -INT "$(cat "$OUT/perf.pid")"; sleep 2;;
    "pipeline: feeding"*)
      # The broker (the second `encompass`) and the five services; not the bench, not the console.
      pids=$(tail -n +2 "$OUT/pids" | grep -v '^console ' | cut -d' ' -f2 | paste -sd,)
      perf record -F 499 -g -p "$pids" -o "$OUT/pipeline.perf" >/dev/null 2>"$OUT/perf-pipeline.err" & echo $! > "$OUT/perf.pid";;
    "pipeline: "*"intake → scheduled"*) kill -INT "$(cat "$OUT/perf.pid")"; sleep 2;;
  esac
done | tee "$OUT/bench.out"
sed -i '2s/^encompass /broker /' "$OUT/pids"
for phase in relay pipeline; do
  [ -f "$OUT/$phase.perf" ] || continue
  perf script -i "$OUT/$phase.perf" -F pid,tid,comm,ip,sym 2>/dev/null | swift demangle --simplified > "$OUT/$phase.stacks"
  python3 "$ROOT/bench/profile_summary.py" "$OUT/$phase.stacks" "$OUT/pids" > "$OUT/$phase.summary"
  echo "$phase: $OUT/$phase.summary"
done
