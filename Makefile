# lavascope: `make demo` runs the embedded demo, `make test` runs the tests.
GO      ?= go
BIN     := build/lavascope
SHIM    := build/liblavascope_torch.so
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The source tree is recorded so that a binary built into it finds build/'s
# shim; it is used only while the binary still lives in this tree.
LDFLAGS := -X github.com/lavascope/lavascope/pkg/cmd/version.Version=$(VERSION) -X github.com/lavascope/lavascope/torch.sourceDir=$(CURDIR)
# Tests run from a temporary folder: name the shim they load.
export LAVASCOPE_TORCH_LIB ?= $(CURDIR)/$(SHIM)

.PHONY: all demo demo-model test deps torch build bench gpu-bundle clean

all: build torch

deps:
	@scripts/install-deps.sh

# The shim is compiled against whatever libtorch this machine has; the script
# skips the compile when neither its sources nor that libtorch changed.
torch: deps
	@echo "make torch: the libtorch shim (C++), compiled once per libtorch"
	@scripts/build-torch.sh

build:
	@echo "go build: $(BIN) (the first build also compiles its dependencies)"
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lavascope

# The first run compiles the shim (scripts/build-torch.sh says how long and
# shows each file); later runs skip it and start at once.
demo: torch build
	./$(BIN)

test: torch
	$(GO) vet ./...
	LAVASCOPE_REQUIRE_TORCH=1 $(GO) test -count=1 -timeout 30m ./...

# Retrains the embedded demo model (demo/model) from scratch: a few minutes on 2 cores.
demo-model: torch build
	scripts/demo-model.sh

bench: torch
	LAVASCOPE_REQUIRE_TORCH=1 $(GO) test -run '^$$' -bench . -benchtime 2s ./...

# Everything scripts/gpu-check.sh needs on a CUDA machine that has no Go: the
# binary and the test binaries it runs (GPU_TESTS=all builds every package's),
# built here without cgo and stripped, to stay small enough to send.
GPU_TESTS ?= torch model explain bench tui.torchengine pkg.cmd.explore
gpu-bundle: LDFLAGS += -s -w
gpu-bundle: build
	rm -rf build/test && mkdir -p build/test
	for p in $$($(GO) list ./...); do \
		rel=$${p#github.com/lavascope/lavascope}; rel=$${rel#/}; \
		[ -n "$$rel" ] || continue; \
		name=$$(echo $$rel | tr / .); \
		[ "$(GPU_TESTS)" = all ] || echo " $(GPU_TESTS) " | grep -q " $$name " || continue; \
		CGO_ENABLED=0 $(GO) test -c -ldflags "-s -w" -o build/test/$$name.test $$p >/dev/null || exit 1; \
	done
	@du -sh build/lavascope build/test

clean:
	rm -rf build
