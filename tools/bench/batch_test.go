package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/benchdata"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestBatchRedeliveryRows runs the batch-redelivery scenario through runRow
// for idemlambda and powertools-ts (driver.mjs on Node, BatchProcessor and
// makeIdempotent), behind a counting proxy as make bench's, and checks what
// each pays per redelivered batch of ten completed records: ours one
// BatchGetItem (5 RRU); Powertools ten failed conditional PutItems and, as
// dynalite ignores ALL_OLD, ten consistent GetItems (10 WRU, 10 RRU).
func TestBatchRedeliveryRows(t *testing.T) {
	t.Chdir("../..") // the driver's paths are from the repository root
	needPowertools(t, "@aws-lambda-powertools/batch")
	target, err := url.Parse(testdynamo.Endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	m := &dynamocost.Meter{Next: http.DefaultTransport}
	p := httputil.NewSingleHostReverseProxy(target)
	p.Transport = m
	p.ErrorLog = log.New(io.Discard, "", 0)
	proxy := httptest.NewServer(p)
	t.Cleanup(proxy.Close)
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(proxy.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	})
	runID := t.Name() + time.Now().Format("150405.000")
	var impls []impl
	for _, name := range []string{"idemlambda", "powertools-ts"} {
		table := "bench-" + name + "-" + runID
		if err := dynamostore.CreateTable(t.Context(), client, table, func(o *dynamostore.Options) { o.Logger = quietLogger() }); err != nil {
			t.Fatal(err)
		}
		m.SetKey(table, "id")
		if name == "idemlambda" {
			impls = append(impls, &ours{client: client, table: table})
			continue
		}
		pt, err := startPowertools(proxy.URL, table, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pt.close)
		impls = append(impls, pt)
	}
	payload := benchdata.JSON(200, 1)
	file := filepath.Join(t.TempDir(), "payload.json")
	if err := os.WriteFile(file, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	dur, rounds := *flagDur, *flagRound
	t.Cleanup(func() { *flagDur, *flagRound = dur, rounds })
	*flagDur, *flagRound = 200*time.Millisecond, 1
	rows := runRow(t.Context(), m, impls, runID, "batch-redelivery", 2, 200, payload, file)
	want := map[string]Row{
		"idemlambda":    {CallsPerOp: 1, WriteUnitsPerOp: 0, ReadUnitsPerOp: 5},
		"powertools-ts": {CallsPerOp: 20, WriteUnitsPerOp: 10, ReadUnitsPerOp: 10},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		w, ok := want[r.Impl]
		if !ok {
			t.Fatalf("unexpected row %q", r.Impl)
		}
		if r.Error != "" || r.Ops < 2 {
			t.Fatalf("%s: %d batches, error %q", r.Impl, r.Ops, r.Error)
		}
		if r.CallsPerOp != w.CallsPerOp || r.WriteUnitsPerOp != w.WriteUnitsPerOp || r.ReadUnitsPerOp != w.ReadUnitsPerOp {
			t.Errorf("%s per batch: %.2f requests, %.2f WRU, %.2f RRU; want %.0f, %.0f, %.0f", r.Impl,
				r.CallsPerOp, r.WriteUnitsPerOp, r.ReadUnitsPerOp, w.CallsPerOp, w.WriteUnitsPerOp, w.ReadUnitsPerOp)
		}
	}
}
