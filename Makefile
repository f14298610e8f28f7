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

.PHONY: all deps configure build test demo stage installed contract clean

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

clean:
	rm -rf $(BUILD)
