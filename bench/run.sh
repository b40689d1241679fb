#!/usr/bin/env bash
# make bench: side-by-side measurements, printed and written to bench/results.md.
# Benchmarks report; they never pass or fail on a number. BENCH_FULL=1 runs
# the long versions (60 s of sustained load, more samples).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift # the rest goes to bench.py (--only ROW, --full, --out FILE)
bash scripts/install-deps.sh >&2
# strace counts the processes behind each reference channel (the diagnosis).
if ! command -v strace >/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends strace >&2
fi
test_image=$(bash scripts/build-image.sh test)
CONVOCATE_BUILD="$PWD/$build" CONVOCATE_TEST_IMAGE="$test_image" \
  /usr/bin/python3 bench/bench.py --out bench/results.md "$@"
