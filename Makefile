# idemlambda — every command a developer or CI needs. `make help` lists them.

SHELL        := /usr/bin/env bash
GO           ?= go
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DYNAMO       := dynalite/ctl.sh
export DYNAMO_PORT ?= 8000
PORT         ?= 3000
# Every package of every module in go.work: the library (.), the example
# functions (handlers/) and the tools (tools/). "./..." would stop at the
# first nested go.mod.
PKGS         := github.com/idemlambda/idemlambda/...

# SAM builds (BuildMethod: makefile) call build-<LogicalId> with ARTIFACTS_DIR.
ARTIFACTS_DIR ?= .build/artifacts
LAMBDA_BUILD  := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

.DEFAULT_GOAL := help
.PHONY: help build test lint run invoke demo deploy clean bench chaos fuzz \
	dynamo-install dynamo-start dynamo-stop build-PaymentsFunction build-OrdersFunction

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build-PaymentsFunction: ## build the payments function's bootstrap into ARTIFACTS_DIR (linux/arm64; sam build calls it)
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./handlers/payments

build-OrdersFunction: ## build the orders function's bootstrap into ARTIFACTS_DIR (linux/arm64; sam build calls it)
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./handlers/orders

build: ## build every function for Lambda into .build/<LogicalId>/bootstrap
	$(MAKE) build-PaymentsFunction ARTIFACTS_DIR=.build/PaymentsFunction
	$(MAKE) build-OrdersFunction ARTIFACTS_DIR=.build/OrdersFunction

test: dynamo-install ## run every test under -race against a local dynalite (started if none runs)
	$(DYNAMO) run -- $(GO) test -race -count=1 -timeout 9m $(PKGS)

lint: ## gofmt, go vet, staticcheck, each module on its own, and the library's lean dependency graph
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@for m in . handlers tools; do (cd $$m && GOWORK=off $(GO) mod verify >/dev/null && \
		GOWORK=off $(GO) list -deps -test ./... >/dev/null) || { echo "module $$m does not build on its own go.mod"; exit 1; }; done
	@tools/leancheck/check.sh >/dev/null

run: dynamo-install ## serve the functions of template.yaml locally on 127.0.0.1:PORT (default 3000), no Docker
	$(GO) run ./tools/cmd/idemlocal run -port $(PORT)

invoke: dynamo-install ## send EVENT=events/<file>.json to FN=<LogicalId> and print the response
	$(GO) run ./tools/cmd/idemlocal invoke -fn $(FN) -event $(EVENT)

demo: dynamo-install ## scripted tour: replay, 409, 422, an SQS batch twice (own stack, or URL=http://127.0.0.1:3000)
	$(GO) run ./tools/cmd/idemlocal demo $(if $(URL),-url $(URL))

bench: dynamo-install ## compare idemlambda, Powertools (TypeScript) and the floor on a local dynalite; writes tools/bench/results.{json,png}
	tools/bench/run.sh

SEED     ?= 1
FUZZTIME ?= 20s
chaos: dynamo-install ## 2,000 ops through Do, Wrap, apigw and sqsbatch under every fault kind, then chaos-http through the whole HTTP stack; fails on any violation
	$(DYNAMO) run -- $(GO) run ./tools/cmd/chaos -seed $(SEED) -clients 16 -ops 125
	$(DYNAMO) run -- $(GO) run ./tools/cmd/idemlocal chaos-http -seed $(SEED) -keys 160 -workers 8

fuzz: ## run every fuzz target for FUZZTIME each (seed corpora in testdata/fuzz)
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$'  -fuzztime $(FUZZTIME) ./idempotent/dynamostore
	$(GO) test -run '^$$' -fuzz '^FuzzKeyPath$$'       -fuzztime $(FUZZTIME) ./idempotent
	$(GO) test -run '^$$' -fuzz '^FuzzWholeEventKey$$' -fuzztime $(FUZZTIME) ./idempotent
	$(GO) test -run '^$$' -fuzz '^FuzzParseKey$$'      -fuzztime $(FUZZTIME) ./idempotent/internal/httpidem
	$(GO) test -run '^$$' -fuzz '^FuzzCanonicalJSON$$' -fuzztime $(FUZZTIME) ./idempotent/internal/httpidem
	$(GO) test -run '^$$' -fuzz '^FuzzBodyKey$$'       -fuzztime $(FUZZTIME) ./idempotent/sqsbatch

deploy: ## sam build && sam deploy (needs the SAM CLI and AWS credentials)
	sam build && sam deploy

dynamo-install: ## install the pinned local DynamoDB-compatible server (npm ci)
	@$(DYNAMO) install

dynamo-start: dynamo-install ## start dynalite on 127.0.0.1:DYNAMO_PORT (default 8000)
	@$(DYNAMO) start

dynamo-stop: ## stop the dynalite that dynamo-start started
	@$(DYNAMO) stop

clean: ## remove build outputs and local server state
	rm -rf .build .aws-sam dynalite/.state
