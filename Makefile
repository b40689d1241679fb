# Thin wrapper over meson; every target works from a clean clone.
BUILD      ?= build
BUILD_ASAN ?= build-asan
PREFIX     ?= /usr/local

.PHONY: all deps check check-asan bench demo install image clean format

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

bench: all
	bash bench/run.sh $(BUILD)

# The full session image convocate:vX.Y.Z (debootstrap base, no registry).
image:
	bash scripts/build-image.sh full

demo:
	@echo "make demo: not yet - the TUI lands with issue 4. Today: make check, or see README.md to run convocate-agent serve by hand."
	@exit 1

install: all
	meson install -C $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
