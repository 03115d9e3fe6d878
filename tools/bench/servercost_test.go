package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/internal/benchdata"
)

// BenchmarkServerInstructions counts the instructions the local server
// spends per new-key invocation of the floor and of idemlambda:
// the requests both sides send for 200 B results, replayed into dynalite's
// HTTP handler under valgrind's callgrind by tools/bench/servercost.cjs
// (the socket left out; the JIT warmed up; the garbage collector kept out
// of the counts). Unlike CPU time on a shared machine, the counts repeat to
// about 0.2 %, so a change to a request's shape can be measured in one run
// (~3 minutes on an idle machine; one iteration is one run; a -spread
// of more than a few thousandths means the rounds disagree).
//
//	go test -run '^$' -bench ServerInstructions -benchtime 1x ./tools/bench
func BenchmarkServerInstructions(b *testing.B) {
	for _, tool := range []string{"node", "valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed", tool)
		}
	}
	const warm, per, rounds = 3000, 100, 5
	payload := benchdata.JSON(200, 1)
	sides := []string{"floor", "idemlambda"}
	reqs := map[string][][2]string{}
	for _, side := range sides {
		c := &capture{next: &stub{}}
		invoke := taxSides(stubClient(c), payload)[side]
		for i := range warm + per*rounds {
			// Keys as long as make bench's ("new-<run>-<workers>-<size>-<round>-i").
			if _, err := invoke(context.Background(), "new-mibx3k2a-1-200-0-"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
		reqs[side] = c.reqs
	}
	dir := b.TempDir()
	file := filepath.Join(dir, "requests.json")
	js, err := json.Marshal(reqs)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, js, 0o600); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "callgrind")
	if err := os.Mkdir(out, 0o700); err != nil {
		b.Fatal(err)
	}
	var counts map[string]float64
	for b.Loop() {
		args := append([]string{"--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + filepath.Join(out, "cg.%p.out"),
			"node", "--expose-gc", "--single-threaded", "--min-semi-space-size=256", "--max-semi-space-size=256",
			"--initial-old-space-size=2048", "--no-flush-bytecode", "--random-seed=1", "--hash-seed=1", "servercost.cjs", file, out,
			strconv.Itoa(warm), strconv.Itoa(per), strconv.Itoa(rounds)}, sides...)
		cmd := exec.Command("valgrind", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		res, err := cmd.Output()
		if err != nil {
			b.Fatalf("servercost.cjs: %v\n%s", err, stderr.Bytes())
		}
		if err := json.Unmarshal(res, &counts); err != nil {
			b.Fatalf("servercost.cjs: %v: %s", err, res)
		}
	}
	for _, side := range sides {
		b.ReportMetric(counts[side], side+"-server-instr/op")
		b.ReportMetric(counts[side+"-spread"], side+"-spread")
	}
	b.ReportMetric(counts["idemlambda"]/counts["floor"], "ratio")
}

// capture records every request's operation and body on its way to next.
type capture struct {
	next http.RoundTripper
	reqs [][2]string
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	c.reqs = append(c.reqs, [2]string{strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810."), string(body)})
	r.Body = io.NopCloser(bytes.NewReader(body))
	return c.next.RoundTrip(r)
}
