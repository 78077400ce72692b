# The two commands of the README, plus helpers. Every target installs what
# it needs first (scripts/install-deps.sh is idempotent and quick when
# everything is present).

CONFIG ?= config.example.yaml
SOURCES := $(shell git ls-files '*.cpp' '*.hpp' 2>/dev/null)

.PHONY: all deps release run test sdk-deps format check-format clean

all: release

deps:
	bash scripts/install-deps.sh

## Build the optimised binary: build/release/pw-router
release: deps
	cmake --preset release
	cmake --build --preset release

## Install, build and start the gateway on config.example.yaml (port 8100).
run: release
	./build/release/pw-router --config $(CONFIG)

sdk-deps:
	cd tests/sdk && npm ci --no-audit --no-fund

## Install, build the dev preset (ASan + UBSan) and run every test.
test: deps sdk-deps
	cmake --preset dev
	cmake --build --preset dev
	ctest --preset dev

format:
	clang-format -i $(SOURCES)

check-format:
	clang-format --dry-run --Werror $(SOURCES)

clean:
	rm -rf build
