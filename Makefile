# idemlambda — every command a developer or CI needs. `make help` lists them.

SHELL        := /usr/bin/env bash
GO           ?= go
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DYNAMO       := dynalite/ctl.sh
REDIS        := redis/ctl.sh
KMS          := kms/ctl.sh
export DYNAMO_PORT ?= 8000
PORT         ?= 3000
# AWS's Lambda Runtime Interface Emulator, which make run/invoke/demo run each
# function under (tools/internal/rie.Version names the same pin).
RIE_VERSION  := v0.0.0-20261030222936-bef5c4ba774d
RIE          := .build/bin/aws-lambda-rie
IDEMLOCAL    := .build/bin/idemlocal
# Every package of every module in go.work: the library (.), the example
# functions (handlers/) and the tools (tools/). "./..." would stop at the
# first nested go.mod.
PKGS         := github.com/idemlambda/idemlambda/...

# SAM builds (BuildMethod: makefile) call build-<LogicalId> with ARTIFACTS_DIR.
ARTIFACTS_DIR ?= .build/artifacts
LAMBDA_BUILD  := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

.DEFAULT_GOAL := help
.PHONY: help build test lint run invoke demo deploy clean bench chaos fuzz \
	dynamo-install dynamo-start dynamo-stop redis-install kms-install rie-install powertools-install build-PaymentsFunction build-OrdersFunction

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build-PaymentsFunction: ## build the payments function's bootstrap into ARTIFACTS_DIR (linux/arm64; sam build calls it)
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./handlers/payments

build-OrdersFunction: ## build the orders function's bootstrap into ARTIFACTS_DIR (linux/arm64; sam build calls it)
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./handlers/orders

build: ## build every function for Lambda into .build/<LogicalId>/bootstrap
	$(MAKE) build-PaymentsFunction ARTIFACTS_DIR=.build/PaymentsFunction
	$(MAKE) build-OrdersFunction ARTIFACTS_DIR=.build/OrdersFunction

test: dynamo-install redis-install kms-install rie-install powertools-install ## run every test under -race against a local dynalite and local-kms, in a private network namespace (kms/ctl.sh); the Redis store's tests start private redis-servers; tools/bench's Powertools-side count tests run (BENCH_POWERTOOLS_REQUIRED: they fail, not skip)
	@$(GO) list -deps -test $(PKGS) >/dev/null # fetch every module first: the namespace has no network
	BENCH_POWERTOOLS_REQUIRED=1 $(KMS) run -- $(DYNAMO) run -- $(GO) test -race -count=1 -timeout 9m $(PKGS)
	$(GO) test -count=1 -run 'Allocations$$' ./idempotent # allocation counts: without -race, whose sync.Pool drops items

lint: ## gofmt, go vet, staticcheck, each module on its own, the library's lean dependency graph, and cfn-lint on template.yaml when installed
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@for m in . handlers idempotent/idemkms idempotent/idemotel idempotent/redisstore tools; do (cd $$m && GOWORK=off $(GO) mod verify >/dev/null && \
		GOWORK=off $(GO) list -deps -test ./... >/dev/null) || { echo "module $$m does not build on its own go.mod"; exit 1; }; done
	@tools/leancheck/check.sh >/dev/null
	@if command -v cfn-lint >/dev/null; then cfn-lint --non-zero-exit-code error template.yaml; else echo "cfn-lint not installed; template.yaml not linted (pip install cfn-lint)"; fi

STORE ?= dynamodb
run: dynamo-install rie-install $(if $(filter redis,$(STORE)),redis-install) ## serve template.yaml's functions (each under aws-lambda-rie) on 127.0.0.1:PORT (default 3000); Ctrl-C stops; STORE=redis keeps idempotency records in a local redis-server; MAX_CONCURRENCY=N runs N invocations per environment (Lambda Managed Instances)
	@$(GO) build -o $(IDEMLOCAL) ./tools/cmd/idemlocal
	$(if $(filter redis,$(STORE)),$(REDIS) run --) $(IDEMLOCAL) run -port $(PORT) $(if $(MAX_CONCURRENCY),-max-concurrency $(MAX_CONCURRENCY))

invoke: dynamo-install rie-install ## send EVENT=<file.json> to FN=<LogicalId> on a fresh stack of its own (URL=http://127.0.0.1:3000: on make run's)
	$(if $(and $(FN),$(EVENT)),,$(error make invoke needs FN=<LogicalId> and EVENT=<file.json>, e.g. make invoke FN=OrdersFunction EVENT=events/sqs-orders.json (add URL=http://127.0.0.1:$(PORT) to use the stack make run serves)))
	@$(GO) build -o $(IDEMLOCAL) ./tools/cmd/idemlocal
	$(IDEMLOCAL) invoke FN=$(FN) EVENT=$(EVENT) $(if $(URL),-url $(URL))

demo: dynamo-install rie-install ## the whole contract, live, with the store calls of each step: replay, concurrent duplicate → 409, 422, an SQS batch twice, a lost answer retried by the Go client, a crashed run taken over, and the metrics written (own stack, or URL=http://127.0.0.1:3000)
	@$(GO) build -o $(IDEMLOCAL) ./tools/cmd/idemlocal
	$(IDEMLOCAL) demo $(if $(URL),-url $(URL))

bench: dynamo-install kms-install powertools-install ## compare idemlambda (plain and encrypted with idemkms on local-kms), Powertools (TypeScript) and the floor on a local dynalite; writes tools/bench/results.{json,png}
	tools/bench/run.sh

SEED     ?= 1
FUZZTIME ?= 20s
chaos: dynamo-install redis-install rie-install ## 2,000 ops through Do, Wrap, apigw and sqsbatch under every fault kind, then chaos-http through the whole HTTP stack, then the 2,000 ops on the Redis store through a TCP fault proxy; fails on any violation
	$(DYNAMO) run -- $(GO) run ./tools/cmd/chaos -seed $(SEED) -clients 16 -ops 125
	$(DYNAMO) run -- $(GO) run ./tools/cmd/idemlocal chaos-http -seed $(SEED) -keys 160 -workers 8
	$(REDIS) run -- $(GO) run ./tools/cmd/chaos -store redis -seed $(SEED) -clients 16 -ops 125

fuzz: ## run every fuzz target for FUZZTIME each (seed corpora in testdata/fuzz)
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$'  -fuzztime $(FUZZTIME) ./idempotent/dynamostore
	$(GO) test -run '^$$' -fuzz '^FuzzKeyPath$$'       -fuzztime $(FUZZTIME) ./idempotent
	$(GO) test -run '^$$' -fuzz '^FuzzWholeEventKey$$' -fuzztime $(FUZZTIME) ./idempotent
	$(GO) test -run '^$$' -fuzz '^FuzzParseKey$$'      -fuzztime $(FUZZTIME) ./idempotent/internal/httpidem
	$(GO) test -run '^$$' -fuzz '^FuzzCanonicalJSON$$' -fuzztime $(FUZZTIME) ./idempotent/internal/httpidem
	$(GO) test -run '^$$' -fuzz '^FuzzBodyKey$$'       -fuzztime $(FUZZTIME) ./idempotent/sqsbatch
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$'        -fuzztime $(FUZZTIME) ./idempotent/internal/keyjson
	$(GO) test -run '^$$' -fuzz '^FuzzEqualKeyEqualValue$$' -fuzztime $(FUZZTIME) ./idempotent
	$(GO) test -run '^$$' -fuzz '^FuzzBodyKeyEqualValue$$'  -fuzztime $(FUZZTIME) ./idempotent/sqsbatch

deploy: ## sam build && sam deploy (needs the SAM CLI and AWS credentials)
	sam build && sam deploy

rie-install: ## install the pinned Lambda Runtime Interface Emulator into .build/bin (go install, once)
	@if ! $(GO) version -m $(RIE) 2>/dev/null | grep -q '$(RIE_VERSION)'; then \
		echo "installing aws-lambda-rie $(RIE_VERSION) into .build/bin"; \
		GOBIN=$(CURDIR)/.build/bin GOWORK=off $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION); \
	fi

dynamo-install: ## install the pinned local DynamoDB-compatible server (npm ci)
	@$(DYNAMO) install

dynamo-start: dynamo-install ## start dynalite on 127.0.0.1:DYNAMO_PORT (default 8000)
	@$(DYNAMO) start

dynamo-stop: ## stop the dynalite that dynamo-start started
	@$(DYNAMO) stop

powertools-install: ## install the pinned Powertools for AWS Lambda (TypeScript) side of make bench into tools/bench/powertools (npm ci, once)
	@tools/bench/powertools/install.sh

redis-install: ## install Debian's redis-server (Redis 7) when missing; the Redis store's tests start their own
	@$(REDIS) install

kms-install: ## install the pinned local-kms into .build/bin (go install, once); kms/ctl.sh runs it only in a private network namespace
	@$(KMS) install

clean: ## remove build outputs and local server state
	rm -rf .build .aws-sam dynalite/.state redis/.state
