package testdynamo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerScript(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    string
		wantErr string
	}{
		{name: "repository", root: root},
		{name: "not installed", root: t.TempDir(), wantErr: "make dynamo-install"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := serverScript(tt.root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one telling to run %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(cli); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "dynalite", "ctl.sh")); err != nil {
		t.Fatalf("repoRoot %s has no dynalite/ctl.sh", root)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testdynamo")); err != nil {
		t.Fatalf("repoRoot %s is not this repository", root)
	}
}
