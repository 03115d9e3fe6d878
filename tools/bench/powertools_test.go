package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// envPowertoolsRequired, when set, says the Powertools side is installed
// (make test sets it after tools/bench/powertools/install.sh): a test that
// needs it then fails rather than skips when node or the install is missing,
// so a broken install cannot silently drop Powertools' counts from CI.
const envPowertoolsRequired = "BENCH_POWERTOOLS_REQUIRED"

// needPowertools skips t unless node is on PATH and the npm package pkg
// (e.g. "@aws-lambda-powertools/batch") is installed in
// tools/bench/powertools, or fails t instead where envPowertoolsRequired is
// set. Call it from the repository root (after t.Chdir("../..")).
func needPowertools(t *testing.T, pkg string) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join("tools", "bench", "powertools", "node_modules", pkg, "package.json")); err != nil {
		missing = "tools/bench/powertools is not installed (make powertools-install, which make test and make bench run)"
	}
	if missing == "" {
		return
	}
	if os.Getenv(envPowertoolsRequired) != "" {
		t.Fatalf("%s, but %s is set: the install make test runs first is broken", missing, envPowertoolsRequired)
	}
	t.Skip(missing)
}
