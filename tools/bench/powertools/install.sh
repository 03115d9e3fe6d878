#!/usr/bin/env bash
# Installs the Powertools for AWS Lambda (TypeScript) side of make bench and
# of the tools/bench tests that assert its request counts: npm ci of the
# versions pinned in package.json and package-lock.json, into node_modules
# here. Idempotent: it installs only when a package the driver imports is
# missing or the tree is older than either file (npm ci writes
# node_modules/.package-lock.json; -nt is true when it is missing too).
# make test and make bench run it before their private network namespace;
# nothing installs during the tests.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
modules="${here}/node_modules"
if [ ! -f "${modules}/@aws-lambda-powertools/idempotency/package.json" ] ||
	[ ! -f "${modules}/@aws-lambda-powertools/batch/package.json" ] ||
	[ "${here}/package-lock.json" -nt "${modules}/.package-lock.json" ] ||
	[ "${here}/package.json" -nt "${modules}/.package-lock.json" ]; then
	(cd "${here}" && npm ci --no-audit --no-fund --loglevel=error)
fi
