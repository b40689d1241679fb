#!/usr/bin/env bash
# make check: deps, a warnings-as-errors build, unit tests, integration tests,
# and one closing line "N passed, N failed" counting every test case.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

bash scripts/install-deps.sh || { echo "check: dependencies could not be installed"; echo "0 passed, 1 failed"; exit 1; }

setup_args=(-Dwerror=true)
if [ "${SANITIZE:-0}" = 1 ]; then
  export CONVOCATE_SANITIZED=1
  setup_args+=(-Db_sanitize=address,undefined -Db_lundef=false)
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "${setup_args[@]}" || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build"; then
  echo "check: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "== unit tests"
meson test -C "$build" --print-errorlogs || true

# Each harness counts as one test; a crash it finds fails it.
echo "== fuzzing (${CHECK_FUZZ_SECONDS:-15} s per harness)"
bash scripts/fuzz.sh --seconds "${CHECK_FUZZ_SECONDS:-15}" --tap "$results/fuzz.tap" \
  "${build}-fuzz" || true

echo "== session test image"
if ! test_image=$(bash scripts/build-image.sh test); then
  echo "check: the test image could not be built"
  test_image=""
fi
export CONVOCATE_TEST_IMAGE="$test_image"
export CONVOCATE_BUILD="$PWD/$build"

echo "== integration tests"
/usr/bin/python3 -m pytest tests/integration -v -p no:cacheprovider \
  --junitxml="$results/integration.xml" ${PYTEST_ARGS:-} || true

/usr/bin/python3 scripts/summarize.py "$build/meson-logs/testlog.json" "$results/integration.xml" \
  "$results/fuzz.tap"
