package main

// Cold start (issue 15): the time from starting a function's process to its
// first Runtime API request (GET /2018-06-01/runtime/invocation/next), ours
// (the payments example: Wrap, dynamostore, the apigw adapter) against a bare
// aws-lambda-go function that creates the same SDK client
// (coldstart/bare). Both are built as for Lambda (-tags lambda.norpc,
// -trimpath, -ldflags "-s -w"), for this machine's architecture.
//
//	go test -run '^$' -bench ColdStart ./tools/bench
//
// BenchmarkBinarySize reports the stripped linux/arm64 sizes of the same
// builds (go test -run '^$' -bench BinarySize ./tools/bench).

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

var coldStartFunctions = map[string]string{
	"payments": "github.com/idemlambda/idemlambda/handlers/payments",
	"bare":     "github.com/idemlambda/idemlambda/tools/bench/coldstart/bare",
}

func buildLambda(tb testing.TB, pkg, goarch string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func BenchmarkColdStart(b *testing.B) {
	for _, name := range []string{"bare", "payments"} {
		b.Run(name, func(b *testing.B) {
			bin := buildLambda(b, coldStartFunctions[name], runtime.GOARCH)
			next := make(chan time.Time, 1)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case next <- time.Now():
				default:
				}
				<-r.Context().Done() // hold /next: no event comes
			})}
			go srv.Serve(ln)
			defer srv.Close()
			env := append(os.Environ(),
				"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
				"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x",
				"PAYMENTS_TABLE=payments", "IDEMPOTENCY_TABLE=idempotency",
				"AWS_LAMBDA_FUNCTION_NAME="+name, "_HANDLER=bootstrap")
			var total time.Duration
			for b.Loop() {
				cmd := exec.Command(bin)
				cmd.Env = env
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				select {
				case t := <-next:
					total += t.Sub(start)
				case <-time.After(10 * time.Second):
					b.Fatal("no /next request within 10 s")
				}
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-next/op")
		})
	}
}

// BenchmarkBinarySize reports the stripped linux/arm64 size of each
// function, as SAM builds it (a figure, not a speed: b.N does not matter).
func BenchmarkBinarySize(b *testing.B) {
	for _, name := range []string{"bare", "payments"} {
		b.Run(name, func(b *testing.B) {
			fi, err := os.Stat(buildLambda(b, coldStartFunctions[name], "arm64"))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
		})
	}
}
