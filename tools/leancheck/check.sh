#!/usr/bin/env bash
# make lint: builds a throw-away program that imports only the library's
# packages (as a user's function would) against this checkout and fails when
# what it links, or what the library's go.mod requires, holds a tool-only
# dependency: the tools' YAML, image and
# TOML libraries, the SDK's config/credentials chain, a Redis client or an
# OpenTelemetry SDK. (Modules that only other modules' tests use, such as
# testify under aws-lambda-go, appear in the full graph but are never
# downloaded for a build.) Its output is what the README's "Dependencies"
# section quotes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cat >"${work}/go.mod" <<MOD
module example.com/leancheck

go 1.26

require github.com/idemlambda/idemlambda v0.0.0-00010101000000-000000000000

replace github.com/idemlambda/idemlambda => ${root}
MOD
cat >"${work}/main.go" <<'GO'
package main

import (
	_ "github.com/idemlambda/idemlambda/idempotent"
	_ "github.com/idemlambda/idemlambda/idempotent/apigw"
	_ "github.com/idemlambda/idemlambda/idempotent/dynamostore"
	_ "github.com/idemlambda/idemlambda/idempotent/emf"
	_ "github.com/idemlambda/idemlambda/idempotent/idemhttp"
	_ "github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

func main() {}
GO
cd "${work}"
export GOWORK=off GOFLAGS=-mod=mod
"${GO:-go}" mod tidy >/dev/null
"${GO:-go}" build -o /dev/null .
pattern='gopkg.in/yaml|golang.org/x/image|go-toml|BurntSushi/toml|aws-sdk-go-v2/config|aws-sdk-go-v2/credentials|redis|rueidis|opentelemetry'
# What the program links, module by module.
linked="$("${GO:-go}" list -deps -f '{{with .Module}}{{.Path}} {{.Version}}{{end}}' . | sort -u)"
# What the library's own go.mod requires (the edges out of our module).
ours="$("${GO:-go}" mod graph | awk '$1 ~ /^github.com\/idemlambda\/idemlambda(@|$)/ {print $2}' | sort -u)"
echo "linked modules:"
echo "${linked}" | sed 's/^/  /'
echo "the library's go.mod requires:"
echo "${ours}" | sed 's/^/  /'
bad="$(printf '%s\n%s\n' "${linked}" "${ours}" | grep -E "${pattern}" || true)"
if [ -n "${bad}" ]; then
	echo "leancheck: a program importing only the library inherits tool or backend dependencies:" >&2
	echo "${bad}" >&2
	exit 1
fi
echo "leancheck: ok ($(echo "${linked}" | grep -vc idemlambda) modules linked besides the library, none tool-only)"
