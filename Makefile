# berth's build, test and demo entry points. `make demo` and `make test` are
# the README's two set-up commands: each installs what it needs first.
GO      ?= go
BIN     := bin/berth
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build deps test bench demo fuzz lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/berth

# Host packages the real-backend tests and the demo need (Debian; as root).
deps:
	@.ci/install-deps

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./...

demo: deps build
	@examples/demo.sh $(BIN)

fuzz:
	$(GO) test ./manifest -run '^$$' -fuzz FuzzLoad -fuzztime 60s

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin
