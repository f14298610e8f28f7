# The README's two commands. Each does all of its own set-up: dependencies, configure, build.
#   make demo   trains LeNet-BN on Fashion-MNIST (d2l's recipe), writing metrics and a plot
#   make test   runs every test, then the API contract programs of ../shared/contract
BUILD    ?= build
TYPE     ?= Release
JOBS     ?= $(shell nproc)
CONTRACT ?= ../shared/contract
# The contract programs whose features exist so far; distributed_tour too when built on MPI.
TOURS    ?= tensor_tour;autograd_tour;seed_notebook;train_tour
WITH_MPI  = $(shell grep -qs '^TG_WITH_MPI:INTERNAL=ON' $(BUILD)/CMakeCache.txt && echo 1)

# Reliability checks (docs/RELIABILITY.md), with clang-14, in build directories of their own; none
# of them is part of `make test`:
#   make asan   the whole suite under AddressSanitizer + UBSan, a Debug build     (ASAN_BUILD)
#   make fuzz   each libFuzzer harness of tests/fuzz for FUZZ_SECONDS            (ASAN_BUILD too)
#   make tsan   the suite without MPI under ThreadSanitizer                       (TSAN_BUILD)
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
ASAN_BUILD   ?= build-asan
TSAN_BUILD   ?= build-tsan
# A tensor too large for memory must throw, not abort: the sanitizers' allocators return null.
# Leak checking is on by default (off only inside MPI ranks: tests/distributed/jobs/mpi_leak_check_off.cpp).
SAN_ENV = ASAN_OPTIONS=allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
          TSAN_OPTIONS=allocator_may_return_null=1:halt_on_error=1:second_deadlock_stack=1

.PHONY: all deps configure build test demo stage installed contract clean fuzz asan tsan

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) $(CMAKE_ARGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory installed contract

# The library as a user gets it: installed into $(BUILD)/stage.
stage:
	@rm -rf $(BUILD)/stage && cmake --install $(BUILD) --prefix $(BUILD)/stage > /dev/null

# A consumer with its own core/tensor.h and data/dataset.h builds against the installed headers.
installed: stage
	@rm -rf $(BUILD)/consumer && \
	  cmake -S tests/consumer -B $(BUILD)/consumer -DCMAKE_BUILD_TYPE=$(TYPE) \
	        -DCMAKE_PREFIX_PATH=$(abspath $(BUILD)/stage) > /dev/null && \
	  cmake --build $(BUILD)/consumer -j $(JOBS) && \
	  ctest --test-dir $(BUILD)/consumer --output-on-failure

contract: stage
	@if [ -d "$(CONTRACT)" ]; then \
	  rm -rf $(BUILD)/contract && \
	  cmake -S $(CONTRACT) -B $(BUILD)/contract -DCMAKE_BUILD_TYPE=$(TYPE) \
	        -DCMAKE_PREFIX_PATH=$(abspath $(BUILD)/stage) \
	        "-DCONTRACT_TOURS=$(TOURS)$(if $(WITH_MPI),;distributed_tour)" > /dev/null && \
	  cmake --build $(BUILD)/contract -j $(JOBS) && \
	  ctest --test-dir $(BUILD)/contract --output-on-failure; \
	else \
	  echo "make test: $(CONTRACT) is absent; skipping the API contract programs"; \
	fi

demo: build
	$(BUILD)/apps/lenet_bn --metrics $(BUILD)/lenet_bn_metrics.csv --plot $(BUILD)/lenet_bn_plot.svg $(DEMO_ARGS)
	@echo "metrics: $(BUILD)/lenet_bn_metrics.csv, plot: $(BUILD)/lenet_bn_plot.svg" 

fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_BUILD=$(ASAN_BUILD) JOBS=$(JOBS) scripts/fuzz

# The fuzz harnesses are built here too (TG_FUZZ): one clang build serves both.
asan:
	@TG_WITH_CLANG=1 scripts/install-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug \
	       "-DTG_SANITIZE=address;undefined" -DTG_FUZZ=ON > /dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(SAN_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# Without MPI: Open MPI is not built for TSan, and its progress threads are not tapegrad's.
# setarch -R: TSan's shadow memory needs the address layout of an unrandomized process (kernels
# with more mmap randomization bits than TSan expects otherwise crash every TSan binary at start).
tsan:
	@TG_WITH_CLANG=1 scripts/install-deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	       -DTG_SANITIZE=thread -DTG_MPI=OFF > /dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	$(SAN_ENV) setarch $$(uname -m) -R ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD)
