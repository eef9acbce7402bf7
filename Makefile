# The two commands of the README: `make stress` (the main job) and `make test`.
# Both install what they need first (scripts/setup.sh; apt-get when root).
STRESS_SECONDS ?= 60
BUILD ?= build
CC_TEST ?=

.PHONY: all setup test stress stress-tsan stress-asan bench coverage clean
all:
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD)/release -j2

setup:
	bash scripts/setup.sh

test: setup
	bash scripts/test.sh

stress: setup
	STRESS_SECONDS=$(STRESS_SECONDS) bash scripts/stress.sh release

stress-tsan: setup
	STRESS_SECONDS=$(STRESS_SECONDS) bash scripts/stress.sh tsan

stress-asan: setup
	STRESS_SECONDS=$(STRESS_SECONDS) bash scripts/stress.sh asan

bench: setup
	bash scripts/bench.sh

coverage: setup
	bash scripts/coverage.sh

clean:
	rm -rf $(BUILD)
