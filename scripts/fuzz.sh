#!/usr/bin/env bash
# make fuzz, and the fuzz step of make check: builds the libFuzzer harnesses of
# tests/fuzz with clang (ASan + UBSan, -Dfuzzing=true) in a build directory of
# their own, then runs each one for N seconds (or N executions) on its seed corpus
# (tests/fuzz/corpus/<harness>) plus the inputs earlier runs kept
# (BUILD/fuzz-corpus/<harness>). A crash, a leak, a sanitizer report or a
# failed check fails the harness; libFuzzer saves the input under
# BUILD/fuzz-artifacts/ and the log stays in BUILD/fuzz-logs/.
#
# usage: scripts/fuzz.sh [--seconds N] [--runs N] [--jobs N] [--harness NAME]...
#                        [--tap FILE] [BUILD_DIR]
#   --seconds N     per harness (default $FUZZ_SECONDS, else 60)
#   --runs N        per harness: stop after N executions (default $FUZZ_RUNS);
#                   then there is no time limit unless --seconds or
#                   $FUZZ_SECONDS gives one (whichever comes first stops it)
#   --jobs N        harnesses run side by side (default $FUZZ_JOBS, else 1)
#   --harness NAME  run only this one (fuzz_session or session); repeatable
#   --tap FILE      also write one TAP line per harness (scripts/summarize.py)
#   BUILD_DIR       default build-fuzz
# Prints one line per harness with its executions, wall and CPU seconds and
# libFuzzer's last coverage figures, and exits 1 when any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-}
runs=${FUZZ_RUNS:-}
jobs=${FUZZ_JOBS:-1}
tap=""
build=build-fuzz
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --harness) only+=("fuzz_${2#fuzz_}"); shift 2 ;;
    --tap) tap=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) build=$1; shift ;;
  esac
done
case "$seconds$runs$jobs" in *[!0-9]*) echo "fuzz: --seconds, --runs and --jobs take numbers" >&2; exit 2 ;; esac
# Time-bounded by default; a run count alone runs until it is reached.
[ -z "$seconds" ] && { [ -n "$runs" ] && seconds=0 || seconds=60; }
limits=(-max_total_time="$seconds")
[ -n "$runs" ] && limits+=(-runs="$runs")

harnesses=()
for f in tests/fuzz/fuzz_*.c; do
  h=$(basename "$f" .c)
  [ "$h" = fuzz_common ] && continue
  if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $h "* ]]; then continue; fi
  harnesses+=("$h")
done
for h in "${only[@]}"; do
  [ -f "tests/fuzz/$h.c" ] && [ "$h" != fuzz_common ] && continue
  echo "fuzz: no harness $h (see tests/fuzz/fuzz_*.c)" >&2
  exit 2
done

# Every harness counts as failed when nothing could be built.
fail_all() {
  echo "fuzz: $1"
  if [ -n "$tap" ]; then
    echo "1..${#harnesses[@]}" > "$tap"
    for i in "${!harnesses[@]}"; do echo "not ok $((i + 1)) - ${harnesses[$i]}: $1" >> "$tap"; done
  fi
  exit 1
}

command -v clang >/dev/null || fail_all "clang is not installed (scripts/install-deps.sh)"
if [ ! -f "$build/build.ninja" ]; then
  # Warnings are the gcc build's job (-Werror there); a clang-only warning
  # must not stop the fuzzing.
  CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dwerror=false -Dbuildtype=debugoptimized >/dev/null ||
    fail_all "meson setup $build failed"
fi
ninja -C "$build" >/dev/null || { ninja -C "$build" | tail -20; fail_all "the harnesses do not build"; }
mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts" "$build/fuzz-logs"

# One harness; its verdict goes to fuzz-logs/<h>.result as "ok|not ok - text".
run_one() {
  local h=$1 log="$build/fuzz-logs/$1.log"
  mkdir -p "$build/fuzz-corpus/$h"
  # Our own log lines go to stderr, which libFuzzer closes (-close_fd_mask=2)
  # after keeping a copy for its reports; syslog is never used here.
  # /usr/bin/time (package time) appends the wall and CPU seconds to the log.
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -a -o "$log" -f 'fuzz-time: %es wall, %Us user + %Ss sys')
  env -u INVOCATION_ID -u JOURNAL_STREAM \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "${timer[@]}" "$build/tests/fuzz/$h" "${limits[@]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -close_fd_mask=2 -artifact_prefix="$build/fuzz-artifacts/$h-" \
    "$build/fuzz-corpus/$h" "tests/fuzz/corpus/$h" > "$log" 2>&1 < /dev/null
  local rc=$? execs took cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^fuzz-time: //p' "$log" | tail -1)
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
  if [ $rc -eq 0 ]; then
    echo "ok - $h: ${execs:-?} executions, ${took:-?}, ${cov:-no coverage line}" \
      > "$build/fuzz-logs/$h.result"
  else
    local why
    why=$(grep -m1 'check failed' "$log" || grep -m1 -E 'ERROR: |Test unit written' "$log")
    why=$(echo "$why" | cut -c1-200)
    echo "not ok - $h: ${why:-exit $rc}; see $log" > "$build/fuzz-logs/$h.result"
  fi
}

running=0
for h in "${harnesses[@]}"; do
  rm -f "$build/fuzz-logs/$h.result"
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
[ -n "$tap" ] && echo "1..${#harnesses[@]}" > "$tap"
for i in "${!harnesses[@]}"; do
  h=${harnesses[$i]}
  line=$(cat "$build/fuzz-logs/$h.result" 2>/dev/null || echo "not ok - $h: no result")
  echo "fuzz: $line"
  case "$line" in "not ok"*) failed=$((failed + 1)) ;; esac
  [ -n "$tap" ] && echo "${line/ - / $((i + 1)) - }" >> "$tap"
done
echo "fuzz: $((${#harnesses[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
