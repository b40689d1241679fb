#!/usr/bin/env bash
# make bench: side-by-side measurements, printed and written to bench/results.md.
# Benchmarks report; they never pass or fail on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift # the rest goes to the benchmark
bash scripts/install-deps.sh >&2
test_image=$(bash scripts/build-image.sh test)
CONVOCATE_BUILD="$PWD/$build" CONVOCATE_TEST_IMAGE="$test_image" \
  /usr/bin/python3 bench/rpc_latency.py --out bench/results.md "$@"
