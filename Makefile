# make test: everything CI checks, the Windows tests under Wine too.
# make bench: the comparison benchmarks.
# make release: static binaries of the CLI for every platform, in dist/.
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
TESTFLAGS ?= -race -count=1 -timeout 8m

.PHONY: test lint cross unit wine soak bench fuzz demo release

test: lint cross unit wine

# go.mod and go.sum must be tidy: go mod tidy -diff shows what it would
# change, and fails.
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(STATICCHECK) ./...

# macOS and FreeBSD build here but are not run; Windows runs under Wine (see
# the wine target and docs/design.md).
cross:
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=freebsd GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=linux GOARCH=386 $(GO) vet ./...
	GOOS=freebsd GOARCH=amd64 $(GO) vet ./...

# The whole suite at the default level (ContainAuto: the strongest here), then
# the core tests again at the process-group level and at the keeper level
# (whose client reads the keeper's answers from the waiting goroutine: the
# default cgroup level spawns without it).
CORE_TESTS = Test(Echo|ExitCodes|Issue4049|Close|ExitBefore|Throughput|WaitConcurrent|WaitBeforeRead|Stop|TreeSignals|Context|SignalAfter|StartErrors|EMFILE|ChildCloses|ReaderCloses|WriteStdin|StdioKinds|NoLeak|ManyChildren|SlogObserver|Channel|ArgsNotUTF8|DirDefault|SignalDispositions)
unit:
	$(GO) test $(TESTFLAGS) ./...
	TETHER_TEST_LEVEL=group $(GO) test $(TESTFLAGS) -short -run '$(CORE_TESTS)' .
	TETHER_TEST_LEVEL=keeper $(GO) test $(TESTFLAGS) -short -run '$(CORE_TESTS)' .

# The Windows tests of every package, run under Wine: .ci/wine-exec makes the
# Wine prefix on first use and says what it works around (-overlay is one of
# those) and fetches Node for Windows for the IPC interop tests. No -race (it
# needs cgo for Windows); -short as for the group level.
# The prefix's wineserver ends by itself 60 s after the last test binary.
# Wine 8 itself now and then loses a process it is starting while the machine
# is loaded (see level_group_windows.go): a failed run is printed, then run
# once more, and the target fails if that fails too.
WINE_EXEC = $(CURDIR)/.ci/wine-exec
wine:
	@ov=$$($(WINE_EXEC) --overlay) && $(WINE_EXEC) --node || exit 1; \
	echo "GOOS=windows GOARCH=amd64 go test -short -exec .ci/wine-exec ./..."; \
	GOOS=windows GOARCH=amd64 $(GO) test -count=1 -short -timeout 5m -overlay="$$ov" -exec "$(WINE_EXEC)" ./... && exit 0; \
	echo "wine: the Windows tests failed (above); once more, as Wine 8 loses processes under load:"; \
	GOOS=windows GOARCH=amd64 $(GO) test -count=1 -short -timeout 5m -overlay="$$ov" -exec "$(WINE_EXEC)" ./...

# Shake out flakes: the process tests, many times (-short trims the 1000-cycle loop).
soak:
	$(GO) test -race -short -count=20 -timeout 30m ./...

fuzz:
	$(GO) test -run XXX -fuzz FuzzLines -fuzztime 60s .
	$(GO) test -run XXX -fuzz FuzzChannelFraming -fuzztime 60s .
	$(GO) test -run XXX -fuzz FuzzParseCRTFD -fuzztime 60s .
	$(GO) test -run XXX -fuzz FuzzUVFrames -fuzztime 60s .
	$(GO) test -run XXX -fuzz FuzzParse$$ -fuzztime 60s ./procfile
	$(GO) test -run XXX -fuzz FuzzParseEnv -fuzztime 60s ./procfile
	$(GO) test -run XXX -fuzz FuzzDecodeMsg -fuzztime 60s ./internal/keeper

bench:
	$(GO) run ./bench $(BENCHFLAGS)

# The built command, not go run: go run exits 1 after a Ctrl-C whatever
# tether's status. (make itself still reports the Ctrl-C as an interrupt.)
demo:
	$(GO) build -o bin/tether ./cmd/tether
	bin/tether up -f examples/Procfile -auto-restart crash

# Static binaries (CGO_ENABLED=0: no libc needed, so they run in scratch,
# distroless and Alpine images) for Linux, and built-only ones for the other
# platforms, with their SHA256SUMS. The version is Go's own stamp, read by
# debug.ReadBuildInfo and `go version -m`: the module version from the git
# tag (or a pseudo-version), vcs.revision and vcs.modified. -buildvcs=true
# overrides a GOFLAGS=-buildvcs=false; Go finds no repository in a git
# worktree (.git is a file there), so release from a clone.
RELEASE_PLATFORMS = linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 freebsd/amd64
release:
	rm -rf dist
	mkdir dist
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/tether-$$os-$$arch; \
		if [ $$os = windows ]; then out=$$out.exe; fi; \
		echo "CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -o $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=true -ldflags='-s -w' -o $$out ./cmd/tether; \
	done
	@$(GO) version -m dist/tether-linux-amd64 | grep -q 'vcs.revision=' || \
		{ echo "release: no version stamped (a git worktree? release from a clone)"; exit 1; }
	cd dist && sha256sum tether-* > SHA256SUMS
	@$(GO) version -m dist/tether-linux-amd64 | grep -E '^\s+(mod|build\s+vcs)'
