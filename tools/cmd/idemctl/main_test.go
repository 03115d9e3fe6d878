package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
	"github.com/idemlambda/idemlambda/tools/internal/redisserver"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

// env points the SDK's default config at the local server, as an operator's
// AWS_ENDPOINT_URL_DYNAMODB would.
func env(t *testing.T) (*dynamostore.Store, string) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", testdynamo.Endpoint(t))
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	return dynamostore.New(client, table), table
}

func idemctl(t *testing.T, args ...string) (stdout, stderr string, rc int) {
	t.Helper()
	var o, e bytes.Buffer
	rc = run(context.Background(), args, &o, &e, time.Now)
	return o.String(), e.String(), rc
}

func TestInspectForgetRunsAgain(t *testing.T) {
	store, table := env(t)
	runs := 0
	order := func() {
		t.Helper()
		_, err := idempotent.Do(t.Context(), idempotent.New(store, idempotent.WithName("payments")), "charge", "order-42", func(context.Context) (string, error) {
			runs++
			return "charged", nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	order()
	order()
	if runs != 1 {
		t.Fatalf("runs = %d before forget, want 1", runs)
	}
	id := idempotent.StepRecordID("payments", "charge", "order-42")

	out, errOut, rc := idemctl(t, "inspect", "--table", table, "--name", "payments", "--step", "charge", "--key", "order-42")
	if rc != 0 || !strings.Contains(out, "COMPLETED (completed)") || !strings.Contains(errOut, id) {
		t.Fatalf("inspect: rc %d\n%s\n%s", rc, out, errOut)
	}
	out, _, rc = idemctl(t, "inspect", "--table", table, "--id", id, "--json")
	var v view
	if err := json.Unmarshal([]byte(out), &v); rc != 0 || err != nil || v.ID != id || v.Status != "COMPLETED" || v.StoredBytes == 0 {
		t.Fatalf("inspect --json: rc %d, %v, %+v\n%s", rc, err, v, out)
	}

	if out, errOut, rc = idemctl(t, "forget", "--table", table, "--id", id); rc != 0 {
		t.Fatalf("forget: rc %d\n%s\n%s", rc, out, errOut)
	}
	order()
	if runs != 2 {
		t.Fatalf("runs = %d after forget, want 2 (the next request runs again)", runs)
	}
	if _, errOut, rc = idemctl(t, "inspect", "--table", table, "--id", id+"0"); rc != 1 || !strings.Contains(errOut, "no record") {
		t.Fatalf("inspect of a missing record: rc %d, %s", rc, errOut)
	}
}

func TestForgetRefusesRunning(t *testing.T) {
	store, table := env(t)
	now := time.Now()
	id := idempotent.RecordID("orders", "o-1")
	rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Owner: "run-1",
		Expiration: now.Add(time.Hour).Truncate(time.Second), LeaseExpiration: now.Add(10 * time.Minute).Truncate(time.Millisecond)}
	if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
		t.Fatal(ok, err)
	}
	_, errOut, rc := idemctl(t, "forget", "--table", table, "--name", "orders", "--key", "o-1")
	if rc != 1 || !strings.Contains(errOut, "refusing") {
		t.Fatalf("forget of a running record: rc %d, %s", rc, errOut)
	}
	if got, err := store.Get(t.Context(), id); err != nil || got == nil {
		t.Fatalf("record gone after a refused forget: %v, %v", got, err)
	}
	if _, errOut, rc = idemctl(t, "forget", "--table", table, "--id", id, "--force"); rc != 0 {
		t.Fatalf("forget --force: rc %d, %s", rc, errOut)
	}
	if got, err := store.Get(t.Context(), id); err != nil || got != nil {
		t.Fatalf("record after forget --force: %v, %v", got, err)
	}
}

func TestPurge(t *testing.T) {
	store, table := env(t)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := idempotent.Do(t.Context(), idempotent.New(store, idempotent.WithName("fn")), "s", k, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := idempotent.Do(t.Context(), idempotent.New(store, idempotent.WithName("other")), "s", "z", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	count := func(name string) int {
		out, _, rc := idemctl(t, "list", "--table", table, "--name", name, "--json", "--page", "1")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var sum map[string]any
		if rc != 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &sum) != nil {
			t.Fatalf("list: rc %d\n%s", rc, out)
		}
		return int(sum["matched"].(float64))
	}
	if n := count("fn"); n != 3 {
		t.Fatalf("list fn = %d records, want 3", n)
	}
	out, _, rc := idemctl(t, "purge", "--table", table, "--name", "fn")
	if rc != 0 || !strings.Contains(out, "dry run: 3 records") {
		t.Fatalf("purge dry run: rc %d, %s", rc, out)
	}
	if n := count("fn"); n != 3 {
		t.Fatalf("after a dry run, %d records, want 3", n)
	}
	if out, _, rc = idemctl(t, "purge", "--table", table, "--name", "fn", "--yes"); rc != 0 || !strings.Contains(out, "deleted 3 records") {
		t.Fatalf("purge --yes: rc %d, %s", rc, out)
	}
	if n, m := count("fn"), count("other"); n != 0 || m != 1 {
		t.Fatalf("after purge: fn %d, other %d; want 0, 1", n, m)
	}
}

func TestTableErrors(t *testing.T) {
	_, _ = env(t)
	if _, errOut, rc := idemctl(t, "list", "--table", "no-such-table", "--name", "x"); rc != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("missing table: rc %d, %s", rc, errOut)
	}
	client := testdynamo.Client(t)
	other := testdynamo.NewTable(t, client, func(o *dynamostore.Options) { o.KeyAttr = "pk_other" })
	if _, errOut, rc := idemctl(t, "list", "--table", other, "--name", "x"); rc != 1 || !strings.Contains(errOut, "partition key") {
		t.Fatalf("wrong key attribute: rc %d, %s", rc, errOut)
	}
}

func TestRedisInspectForget(t *testing.T) {
	srv, err := redisserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	store := redisstore.New(client)
	runs := 0
	order := func() {
		t.Helper()
		if _, err := idempotent.Do(t.Context(), idempotent.New(store, idempotent.WithName("payments")), "charge", "order-7", func(context.Context) (int, error) { runs++; return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	order()
	url := "redis://" + srv.Addr + "/0"
	out, errOut, rc := idemctl(t, "inspect", "--redis", url, "--name", "payments", "--step", "charge", "--key", "order-7")
	if rc != 0 || !strings.Contains(out, "COMPLETED") {
		t.Fatalf("inspect: rc %d\n%s\n%s", rc, out, errOut)
	}
	if out, _, rc = idemctl(t, "list", "--redis", url, "--name", "payments"); rc != 0 || !strings.Contains(out, "1 records") {
		t.Fatalf("list: rc %d\n%s", rc, out)
	}
	if _, errOut, rc = idemctl(t, "forget", "--redis", url, "--name", "payments", "--step", "charge", "--key", "order-7"); rc != 0 {
		t.Fatalf("forget: rc %d, %s", rc, errOut)
	}
	order()
	if runs != 2 {
		t.Fatalf("runs = %d, want 2 (the next request runs again after forget)", runs)
	}
}
