#!/usr/bin/env bash
# make bench: side-by-side measurements, printed and written to bench/results.md.
# Benchmarks report; they never pass or fail on a number. BENCH_FULL=1 runs
# the long versions (60 s of sustained load, more samples).
set -euo pipefail
cd "$(dirname "$0")/.."
usage() {
  cat <<'USAGE'
usage: bash bench/run.sh [BUILD_DIR] [--only ROW[,ROW...]] [--full] [--out FILE]
  BUILD_DIR  a meson build directory holding src/convocate-agent (default build)
  --only     run the rows whose names contain one of these words
  --full     the long versions (also BENCH_FULL=1)
  --out      where the table goes (default bench/results.md)
BENCH_FLEET=1 adds the 100-agent fleet row (see bench/README.md).
USAGE
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
build=build
case "${1:-}" in "" | -*) ;; *) build=$1; shift ;; esac # the rest goes to bench.py
# A mistyped first argument would otherwise run every row against nothing
# and overwrite bench/results.md with a table of failures.
if [ ! -x "$build/src/convocate-agent" ]; then
  echo "bench: $build/src/convocate-agent not found; build first (make) or name the build directory" >&2
  usage >&2
  exit 2
fi
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
