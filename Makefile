# make test: everything CI checks. make bench: the comparison benchmarks.
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
TESTFLAGS ?= -race -count=1 -timeout 8m

.PHONY: test lint cross unit soak bench fuzz demo

test: lint cross unit

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# macOS, Windows and FreeBSD build here but are not run (see docs/design.md).
cross:
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=freebsd GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=linux GOARCH=386 $(GO) vet ./...

# The whole suite at the default level (ContainAuto: the strongest here), then
# the core tests again at the process-group level.
CORE_TESTS = Test(Echo|ExitCodes|Issue4049|Close|ExitBefore|Throughput|WaitConcurrent|WaitBeforeRead|Stop|TreeSignals|Context|SignalAfter|StartErrors|EMFILE|ChildCloses|ReaderCloses|WriteStdin|StdioKinds|NoLeak|ManyChildren|SlogObserver|Channel|ArgsNotUTF8|DirDefault|SignalDispositions)
unit:
	$(GO) test $(TESTFLAGS) ./...
	TETHER_TEST_LEVEL=group $(GO) test $(TESTFLAGS) -short -run '$(CORE_TESTS)' .

# Shake out flakes: the process tests, many times (-short trims the 1000-cycle loop).
soak:
	$(GO) test -race -short -count=20 -timeout 30m ./...

fuzz:
	$(GO) test -run XXX -fuzz FuzzLines -fuzztime 60s .
	$(GO) test -run XXX -fuzz FuzzChannelFraming -fuzztime 60s .
	$(GO) test -run XXX -fuzz FuzzParse$$ -fuzztime 60s ./procfile
	$(GO) test -run XXX -fuzz FuzzParseEnv -fuzztime 60s ./procfile

bench:
	$(GO) run ./bench $(BENCHFLAGS)

demo:
	$(GO) run ./cmd/tether up -f examples/Procfile -auto-restart crash
