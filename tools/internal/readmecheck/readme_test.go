package readmecheck

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const root = "../../.."

// goBlocks returns the ```go blocks of a Markdown file.
func goBlocks(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = new(strings.Builder)
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// requireLine matches a requirement inside a go.mod require block.
var requireLine = regexp.MustCompile(`^\s*([^\s]+)\s+(v[^\s]+)`)

// requirements merges the require lines of the given go.mod files, keeping
// the highest version of each module, and drops our own modules (replaced).
func requirements(t *testing.T, files ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in := false
		for _, line := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(line, "require ("):
				in = true
				continue
			case in && strings.HasPrefix(line, ")"):
				in = false
				continue
			case strings.HasPrefix(line, "require "):
				line = strings.TrimPrefix(line, "require ")
			case !in:
				continue
			}
			m := requireLine.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(m[1], "github.com/idemlambda/idemlambda") {
				continue
			}
			if v, ok := out[m[1]]; !ok || newer(m[2], v) {
				out[m[1]] = m[2]
			}
		}
	}
	return out
}

// newer reports whether version a is above b (numeric major.minor.patch,
// then the rest as text: enough for the versions our go.mod files hold).
func newer(a, b string) bool {
	pa, pb := strings.SplitN(strings.TrimPrefix(a, "v"), "-", 2), strings.SplitN(strings.TrimPrefix(b, "v"), "-", 2)
	na, nb := strings.Split(pa[0], "."), strings.Split(pb[0], ".")
	for i := 0; i < len(na) && i < len(nb); i++ {
		x, _ := strconv.Atoi(na[i])
		y, _ := strconv.Atoi(nb[i])
		if x != y {
			return x > y
		}
	}
	return a > b
}

// TestReadmeSnippetsCompile builds every Go snippet of README.md in a fresh
// module outside the repository, as a user following the README would.
func TestReadmeSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, filepath.Join(root, "README.md"))
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d Go snippets; expected the quick start and one per front", len(blocks))
	}
	reqs := requirements(t,
		filepath.Join(root, "handlers/go.mod"),
		filepath.Join(root, "idempotent/idemotel/go.mod"),
		filepath.Join(root, "idempotent/redisstore/go.mod"))
	var gomod strings.Builder
	gomod.WriteString("module example.com/snippets\n\ngo 1.26.0\n\nrequire (\n")
	for _, m := range []string{"", "/idempotent/redisstore", "/idempotent/idemotel"} {
		fmt.Fprintf(&gomod, "\tgithub.com/idemlambda/idemlambda%s v0.0.0-00010101000000-000000000000\n", m)
	}
	for p, v := range reqs {
		fmt.Fprintf(&gomod, "\t%s %s\n", p, v)
	}
	gomod.WriteString(")\n\n")
	for _, m := range []string{"", "/idempotent/redisstore", "/idempotent/idemotel"} {
		fmt.Fprintf(&gomod, "replace github.com/idemlambda/idemlambda%s => %s%s\n", m, abs, m)
	}
	var sums []byte
	for _, f := range []string{"go.sum", "handlers/go.sum", "idempotent/idemotel/go.sum", "idempotent/redisstore/go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, b...)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, src := range blocks {
		if !strings.HasPrefix(src, "package ") {
			t.Errorf("README snippet %d is not a whole program (it must start with a package clause, so users can copy it):\n%s", i+1, src)
			continue
		}
		sub := filepath.Join(dir, fmt.Sprintf("s%02d", i+1))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README snippets do not build in a fresh module: %v\n%s", err, out)
	}
}

var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestRelativeLinksResolve checks every relative link of every Markdown
// file of the repository (anchors of other files not included).
func TestRelativeLinksResolve(t *testing.T) {
	n := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", ".build", ".state":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".md") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			path := strings.SplitN(target, "#", 2)[0]
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), path)); err != nil {
				t.Errorf("%s: link %q does not resolve", p, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no relative links found: the walk is broken")
	}
}

// TestNoDevelopmentLog keeps issue numbers and session phrasing out of what
// users read.
func TestNoDevelopmentLog(t *testing.T) {
	bad := regexp.MustCompile(`(?i)\bthis round\b|\blast round\b|\bissue[- ]\d+|\bdefect \d+ of\b|before the observer existed`)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "CONTRIBUTING.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if bad.MatchString(line) {
				t.Errorf("%s:%d reads like a development log: %s", f, i+1, line)
			}
		}
	}
}
