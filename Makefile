# Thin wrapper over meson; every target works from a clean clone.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
PREFIX     ?= /usr/local

.PHONY: all deps check check-asan fuzz bench soak demo demo-stop install image deb clean format

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX) -Dwerror=true

# Installs missing apt packages and starts dockerd when it is not answering.
deps:
	bash scripts/install-deps.sh

# The one test command: deps, warnings-as-errors build, unit tests, then the
# integration tests against real engines and peers. Ends with "N passed, N failed".
check:
	bash scripts/check.sh $(BUILD)

check-asan:
	SANITIZE=1 bash scripts/check.sh $(BUILD_ASAN)

# libFuzzer harnesses (tests/fuzz), built by clang in $(BUILD_FUZZ), each run
# for FUZZ_SECONDS (default 60), or to FUZZ_RUNS executions, FUZZ_JOBS side
# by side: scripts/fuzz.sh reads them from the environment, where make puts
# them when they are given on its command line.
fuzz:
	bash scripts/fuzz.sh $(BUILD_FUZZ)

bench: all
	bash bench/run.sh $(BUILD)

# One agent under steady mixed load (50 RPC/s, 20 attach cycles a minute) for
# SOAK_MINUTES (default 30); reports its RSS, USS and fds at start and end and
# whether they grew more than 1 % (scripts/soak.py). Not part of make check.
soak: all
	bash scripts/install-deps.sh >&2
	CONVOCATE_BUILD=$(CURDIR)/$(BUILD) \
	  CONVOCATE_TEST_IMAGE=$$(bash scripts/build-image.sh test) /usr/bin/python3 scripts/soak.py

# The full session image convocate:vX.Y.Z (debootstrap base, no registry).
image:
	bash scripts/build-image.sh full

# A shell and an agent on this host, the TUI in the foreground (scripts/demo.sh).
demo:
	BUILD=$(BUILD) bash scripts/demo.sh

# Stops the daemons that `make demo DEMO_NO_TUI=1` left running.
demo-stop:
	bash scripts/demo.sh stop

install: all
	meson install -C $(BUILD)

# The convocate and convocate-agent packages, built by dpkg-buildpackage from
# debian/ into $(BUILD)/deb (scripts/build-deb.sh; as root it installs
# missing build dependencies, otherwise it names them).
deb:
	bash scripts/build-deb.sh $(BUILD)/deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
