package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/tools/internal/samtemplate"
)

// demo runs the scripted tour (make demo). Without -url it starts the stack
// itself on a free port, with a counting DynamoDB proxy in front of the local
// server (dynamoFront), and stops it at the end; the stack's logs go to a file.
// With -url it drives a running `idemlocal run`: the same steps, but without
// DynamoDB call counts, and the concurrent duplicate is provoked by racing
// pairs of requests (bounded) instead of holding the first one.
func demo(ctx context.Context, tpl *samtemplate.Template, o options, stdout io.Writer, log *slog.Logger) error {
	d := &demoRun{
		out:  stdout,
		root: filepath.Dir(o.template),
		run:  strings.ToLower(rand.Text()[:6]),
		http: &http.Client{Timeout: 30 * time.Second},
	}
	if o.url != "" {
		d.base, d.suffixIDs = strings.TrimSuffix(o.url, "/"), true
		d.heading("Using the stack at " + d.base)
	} else {
		if err := os.MkdirAll(o.buildDir, 0o755); err != nil {
			return err
		}
		logPath := filepath.Join(o.buildDir, "demo.log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logFile.Close()
		if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" {
			o.tablePrefix = "demo-" + d.run + "-" // a shared server: tables of our own
		}
		metrics := &emfCollector{}
		d.metrics = metrics
		o.port, o.logs = "0", io.MultiWriter(logFile, metrics)
		o.dynamoFront = func(endpoint string) (string, error) {
			f, err := startDynamoFront(endpoint)
			if err != nil {
				return "", err
			}
			d.front = f
			return f.url, nil
		}
		d.heading("Starting the local stack: template.yaml -> go build -> aws-lambda-rie per function -> dynalite")
		fmt.Fprintf(stdout, "(the functions' logs go to %s)\n", logPath)
		s, err := startStack(ctx, tpl, o, slog.New(slog.NewTextHandler(logFile, nil)))
		if d.front != nil {
			defer d.front.close()
		}
		if err != nil {
			return err
		}
		closeStack := sync.OnceValue(s.close)
		defer closeStack()
		d.closeStack = func() { _ = closeStack() }
		d.base, d.prefix = s.url, o.tablePrefix
		d.db = newDynamoClient(s.env.endpoint, o.region)
		fmt.Fprintf(stdout, "HTTP API on %s; the functions reach DynamoDB through a proxy that counts their calls\n", d.base)
	}
	err := d.steps(ctx)
	if d.metrics != nil {
		// Once the functions have exited, every line they printed is in.
		d.closeStack()
		d.heading("Metrics: the functions printed one CloudWatch EMF record per invocation (summed here)")
		d.metrics.print(d.out)
	}
	if err != nil {
		log.Debug("demo failed", "err", err)
		return err
	}
	return nil
}

// demoRun is one run of the tour against a stack at base.
type demoRun struct {
	out        io.Writer
	base       string
	run        string // random, so keys are fresh on every run
	http       *http.Client
	front      *dynamoFront      // nil against an external stack
	db         *dynamodb.Client  // the local server itself (not through front); nil when external
	prefix     string            // table name prefix
	first      *exchange         // step 1's answer
	malformed  events.SQSMessage // the malformed order of step 6
	root       string            // the template's folder (events/ is there)
	suffixIDs  bool              // give the SQS batch's ids the run's suffix (a stack with state)
	metrics    *emfCollector     // the functions' EMF lines; nil when external
	closeStack func()            // stops the stack (once); nil when external
}

// demoStep is one step: a title, what it shows and the check.
type demoStep struct {
	title string
	run   func(ctx context.Context) error
}

// steps runs every step, reports each and returns an error naming the
// failed ones.
func (d *demoRun) steps(ctx context.Context) error {
	all := []demoStep{
		{"1. A first POST /payments with an Idempotency-Key creates the payment: 201", d.stepCreate},
		{"2. The same request again is a replay: the same body, Idempotent-Replayed: true, the handler does not run", d.stepReplay},
		{"3. GET /payments/{id} is not guarded (only POST and PATCH are) and reads the payment: 200", d.stepGet},
		{"4. A duplicate that arrives while the first request still runs: 409 with Retry-After", d.stepConcurrent},
		{"5. The same key with another body: 422 application/problem+json", d.stepMismatch},
		{"6. An SQS batch delivered twice, one record malformed: partial batch response, nothing runs twice", d.stepSQS},
		{"7. A lost answer: the Go client (idemclient) retries with the key it made once and gets the first answer, replayed", d.stepLostAnswer},
		{"8. A run dies mid-run: once its lease (the invocation's deadline) ends, the retry takes the lease over and runs again", d.stepTakeover},
	}
	var failed []string
	for _, st := range all {
		d.heading(st.title)
		if err := st.run(ctx); err != nil {
			fmt.Fprintf(d.out, "\nFAIL: %v\n", err)
			failed = append(failed, st.title[:2])
			continue
		}
		fmt.Fprintln(d.out, "\nOK")
	}
	d.heading("Summary")
	if len(failed) > 0 {
		fmt.Fprintf(d.out, "%d of %d steps failed: %s\n", len(failed), len(all), strings.Join(failed, " "))
		return fmt.Errorf("demo: %d of %d steps failed", len(failed), len(all))
	}
	fmt.Fprintf(d.out, "all %d steps behaved as the contract says\n", len(all))
	return nil
}

func (d *demoRun) heading(s string) {
	fmt.Fprintf(d.out, "\n=== %s\n", s)
}

func (d *demoRun) key(n int) string { return fmt.Sprintf("demo-%s-%d", d.run, n) }

const (
	demoBody      = `{"amount":1250,"currency":"EUR","customer":"c-1"}`
	demoOtherBody = `{"amount":9999,"currency":"EUR","customer":"c-1"}`
)

// exchange is one HTTP request and its answer.
type exchange struct {
	method, path string
	reqHeader    http.Header
	reqBody      string
	status       int
	statusText   string
	header       http.Header
	body         []byte
}

// do sends one request; key "" sends none.
func (d *demoRun) do(ctx context.Context, method, path, key, body string) (*exchange, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	x := &exchange{method: method, path: path, reqHeader: req.Header.Clone(), reqBody: body}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	x.body, err = io.ReadAll(resp.Body)
	x.status, x.statusText, x.header = resp.StatusCode, resp.Status, resp.Header
	return x, err
}

// print shows the exchange like curl -v: request lines with >, answer with <.
func (d *demoRun) print(x *exchange) {
	fmt.Fprintf(d.out, "\n> %s %s\n", x.method, x.path)
	printHeaders(d.out, "> ", x.reqHeader)
	if x.reqBody != "" {
		fmt.Fprintf(d.out, "> \n> %s\n", x.reqBody)
	}
	fmt.Fprintf(d.out, "< HTTP/1.1 %s\n", x.statusText)
	printHeaders(d.out, "< ", x.header)
	if len(x.body) > 0 {
		fmt.Fprintf(d.out, "< \n< %s\n", bytes.TrimSpace(x.body))
	}
}

// printHeaders prints headers sorted, without the ones that change on every
// request or say nothing here.
func printHeaders(w io.Writer, prefix string, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		switch k {
		case "Date", "Content-Length", "Apigw-Requestid", "User-Agent", "Accept-Encoding":
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			fmt.Fprintf(w, "%s%s: %s\n", prefix, k, v)
		}
	}
}

// counted runs f and returns the DynamoDB calls the functions made meanwhile
// (nil against an external stack).
func (d *demoRun) counted(f func() error) (map[call]int, error) {
	if d.front == nil {
		return nil, f()
	}
	before := d.front.snapshot()
	err := f()
	return d.front.since(before), err
}

// idempotencyRoles names what each call on the idempotency table is (contract §3, docs/contract.md).
var idempotencyRoles = map[string]string{
	"PutItem":    "acquire",
	"GetItem":    "read the existing record",
	"UpdateItem": "complete",
	"DeleteItem": "release",
}

// opRank orders the calls as one invocation makes them.
func opRank(s string) int {
	for i, op := range []string{"PutItem", "GetItem", "UpdateItem", "DeleteItem"} {
		if strings.HasPrefix(s, op+" ") {
			return i
		}
	}
	return 9
}

// printCalls prints the calls per table, the idempotency table first.
func (d *demoRun) printCalls(calls map[call]int) {
	if calls == nil {
		return
	}
	byTable := map[string][]string{}
	for c, n := range calls {
		t := strings.TrimPrefix(c.table, d.prefix)
		s := fmt.Sprintf("%s x%d", c.op, n)
		if role, ok := idempotencyRoles[c.op]; ok && t == "IdempotencyTable" {
			s += " (" + role + ")"
		}
		byTable[t] = append(byTable[t], s)
	}
	tables := make([]string, 0, len(byTable))
	for t := range byTable {
		tables = append(tables, t)
	}
	sort.Slice(tables, func(i, j int) bool {
		if (tables[i] == "IdempotencyTable") != (tables[j] == "IdempotencyTable") {
			return tables[i] == "IdempotencyTable"
		}
		return tables[i] < tables[j]
	})
	fmt.Fprintln(d.out, "\nDynamoDB calls made by the function:")
	if len(tables) == 0 {
		fmt.Fprintln(d.out, "  none")
	}
	for _, t := range tables {
		slices.SortFunc(byTable[t], func(a, b string) int { return opRank(a) - opRank(b) })
		fmt.Fprintf(d.out, "  %-17s %s\n", t+":", strings.Join(byTable[t], ", "))
	}
}

func (d *demoRun) table(logicalID string) string { return d.prefix + logicalID }

// writes counts the calls that write to the table.
func writes(calls map[call]int, table string) int {
	n := 0
	for c, k := range calls {
		if c.table == table && c.op != "GetItem" && c.op != "Query" && c.op != "Scan" {
			n += k
		}
	}
	return n
}

// postPayment sends POST /payments with the demo's first key and body, prints
// the exchange and the DynamoDB calls it caused.
func (d *demoRun) postPayment(ctx context.Context, body string) (*exchange, map[call]int, error) {
	var x *exchange
	calls, err := d.counted(func() (err error) {
		x, err = d.do(ctx, "POST", "/payments", d.key(1), body)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	d.print(x)
	d.printCalls(calls)
	return x, calls, nil
}

func (d *demoRun) stepCreate(ctx context.Context) error {
	x, calls, err := d.postPayment(ctx, demoBody)
	if err != nil {
		return err
	}
	d.first = x
	switch {
	case x.status != http.StatusCreated:
		return fmt.Errorf("status %d, want 201", x.status)
	case x.header.Get("Idempotent-Replayed") != "":
		return errors.New("a first request is marked Idempotent-Replayed")
	case calls != nil && writes(calls, d.table("PaymentsTable")) != 1:
		return fmt.Errorf("%d writes to PaymentsTable, want 1", writes(calls, d.table("PaymentsTable")))
	}
	return nil
}

func (d *demoRun) stepReplay(ctx context.Context) error {
	if d.first == nil {
		return errors.New("step 1 made no payment")
	}
	x, calls, err := d.postPayment(ctx, demoBody)
	if err != nil {
		return err
	}
	if calls != nil {
		fmt.Fprintln(d.out, "(the acquire fails on the COMPLETED record; dynalite does not return the old item with the failure,\n so it is read once more: 2 calls here, 1 on DynamoDB. Nothing touches PaymentsTable: the handler did not run.)")
	}
	switch {
	case x.status != d.first.status:
		return fmt.Errorf("status %d, want the first answer's %d", x.status, d.first.status)
	case !bytes.Equal(x.body, d.first.body):
		return fmt.Errorf("body %s, want the first answer's %s", x.body, d.first.body)
	case x.header.Get("Idempotent-Replayed") != "true":
		return errors.New("no Idempotent-Replayed: true")
	case calls != nil && writes(calls, d.table("PaymentsTable")) != 0:
		return fmt.Errorf("the handler ran again: %d writes to PaymentsTable", writes(calls, d.table("PaymentsTable")))
	}
	return nil
}

func (d *demoRun) stepGet(ctx context.Context) error {
	if d.first == nil {
		return errors.New("step 1 made no payment")
	}
	var created struct{ ID string }
	if err := json.Unmarshal(d.first.body, &created); err != nil || created.ID == "" {
		return fmt.Errorf("the 201 body has no id: %s", d.first.body)
	}
	x, err := d.do(ctx, "GET", "/payments/"+created.ID, "", "")
	if err != nil {
		return err
	}
	d.print(x)
	if x.status != http.StatusOK || !bytes.Contains(x.body, []byte(created.ID)) {
		return fmt.Errorf("status %d body %s, want 200 with the payment %s", x.status, x.body, created.ID)
	}
	return nil
}

func (d *demoRun) stepConcurrent(ctx context.Context) error {
	if d.front != nil {
		return d.concurrentHeld(ctx)
	}
	return d.concurrentRaced(ctx)
}

// concurrentHeld holds the first request's next idempotency-table call after
// its acquire (the complete) in the DynamoDB proxy, sends the duplicate, then
// lets the first one finish. Deterministic: no timing involved.
func (d *demoRun) concurrentHeld(ctx context.Context) error {
	fmt.Fprintln(d.out, "\nThe DynamoDB proxy holds request A after its acquire, so A is still running when B arrives.")
	held, release := d.front.holdAfter(d.table("IdempotencyTable"), 1)
	defer release()
	type answer struct {
		x   *exchange
		err error
	}
	first := make(chan answer, 1)
	go func() {
		x, err := d.do(ctx, "POST", "/payments", d.key(2), demoBody)
		first <- answer{x, err}
	}()
	select {
	case <-held:
	case a := <-first:
		return fmt.Errorf("request A finished without being held: %v", a.err)
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := d.do(ctx, "POST", "/payments", d.key(2), demoBody)
	release()
	a := <-first
	if err != nil {
		return fmt.Errorf("request B: %w", err)
	}
	if a.err != nil {
		return fmt.Errorf("request A: %w", a.err)
	}
	fmt.Fprintln(d.out, "\nB, while A is held:")
	d.print(b)
	fmt.Fprintln(d.out, "\nA, once released:")
	d.print(a.x)
	if err := check409(b); err != nil {
		return err
	}
	if a.x.status != http.StatusCreated {
		return fmt.Errorf("request A: status %d, want 201", a.x.status)
	}
	return nil
}

// concurrentRaced sends pairs of identical requests with a fresh key at the
// same moment until one of a pair gets 409 (at most 25 pairs).
func (d *demoRun) concurrentRaced(ctx context.Context) error {
	const attempts = 25
	fmt.Fprintf(d.out, "\nSending pairs of identical requests at once, a fresh key per pair, until one overlaps (at most %d pairs).\n", attempts)
	for i := 0; i < attempts; i++ {
		key := d.key(100 + i)
		var xs [2]*exchange
		var errs [2]error
		var wg sync.WaitGroup
		for j := range xs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				xs[j], errs[j] = d.do(ctx, "POST", "/payments", key, demoBody)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return err
		}
		for j, x := range xs {
			if x.status == http.StatusConflict {
				fmt.Fprintf(d.out, "pair %d overlapped:\n", i+1)
				d.print(x)
				d.print(xs[1-j])
				return check409(x)
			}
		}
	}
	return fmt.Errorf("no pair of %d overlapped; this machine answers faster than the race (run the demo without -url for a deterministic 409)", attempts)
}

func check409(x *exchange) error {
	switch {
	case x.status != http.StatusConflict:
		return fmt.Errorf("status %d, want 409", x.status)
	case x.header.Get("Retry-After") == "":
		return errors.New("409 without Retry-After")
	case !strings.HasPrefix(x.header.Get("Content-Type"), "application/problem+json"):
		return fmt.Errorf("409 with Content-Type %q, want application/problem+json", x.header.Get("Content-Type"))
	}
	return nil
}

func (d *demoRun) stepMismatch(ctx context.Context) error {
	x, calls, err := d.postPayment(ctx, demoOtherBody)
	if err != nil {
		return err
	}
	var problem struct {
		Type, Title string
		Status      int
	}
	switch {
	case x.status != http.StatusUnprocessableEntity:
		return fmt.Errorf("status %d, want 422", x.status)
	case !strings.HasPrefix(x.header.Get("Content-Type"), "application/problem+json"):
		return fmt.Errorf("Content-Type %q, want application/problem+json", x.header.Get("Content-Type"))
	case json.Unmarshal(x.body, &problem) != nil || problem.Status != 422 || problem.Title == "":
		return fmt.Errorf("not an RFC 9457 problem with status 422: %s", x.body)
	case calls != nil && writes(calls, d.table("PaymentsTable")) != 0:
		return errors.New("the handler ran")
	}
	return nil
}

// sqsBatch is events/sqs-orders.json plus one malformed order (an amount
// that is not a number). With suffixIDs (against an external stack) the order
// and message ids get the run's suffix, so a second demo run starts afresh.
func (d *demoRun) sqsBatch() (events.SQSEvent, error) {
	var ev events.SQSEvent
	raw, err := os.ReadFile(filepath.Join(d.root, "events", "sqs-orders.json"))
	if err != nil {
		return ev, err
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, err
	}
	if len(ev.Records) == 0 {
		return ev, errors.New("events/sqs-orders.json has no records")
	}
	bad := ev.Records[len(ev.Records)-1]
	bad.MessageId = "7b4f2c1e-5d3a-4e8b-9f60-1a2b3c4d5e6f"
	bad.ReceiptHandle = "AQEBbad0rder==3"
	bad.Body = `{"orderId":"o-4","customer":"c-4","amount":"12.50"}`
	bad.Md5OfBody = ""
	ev.Records = append(ev.Records, bad)
	if d.suffixIDs {
		for i := range ev.Records {
			r := &ev.Records[i]
			r.MessageId += "-" + d.run
			var body map[string]any
			if json.Unmarshal([]byte(r.Body), &body) == nil {
				body["orderId"] = fmt.Sprint(body["orderId"], "-", d.run)
				b, _ := json.Marshal(body)
				r.Body = string(b)
			}
		}
	}
	d.malformed = ev.Records[len(ev.Records)-1]
	return ev, nil
}

// invoke sends an event to a function through the stack's Invoke API.
func (d *demoRun) invoke(ctx context.Context, function string, event any) ([]byte, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", d.base+invokePrefix+function+"/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return nil, fmt.Errorf("invoke %s: %s %s", function, resp.Status, body)
	}
	return body, nil
}

func (d *demoRun) stepSQS(ctx context.Context) error {
	ev, err := d.sqsBatch()
	if err != nil {
		return err
	}
	want := []string{d.malformed.MessageId}
	fmt.Fprintf(d.out, "\nThe batch (events/sqs-orders.json plus one malformed order), keyed by orderId:\n")
	for _, r := range ev.Records {
		fmt.Fprintf(d.out, "  %s  %s\n", r.MessageId, r.Body)
	}
	for delivery := 1; delivery <= 2; delivery++ {
		fmt.Fprintf(d.out, "\n> invoke OrdersFunction, delivery %d of the same %d records\n", delivery, len(ev.Records))
		var answer []byte
		calls, err := d.counted(func() (err error) {
			answer, err = d.invoke(ctx, "OrdersFunction", ev)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "< %s\n", bytes.TrimSpace(answer))
		d.printCalls(calls)
		var res events.SQSEventResponse
		if err := json.Unmarshal(answer, &res); err != nil {
			return fmt.Errorf("delivery %d: %w", delivery, err)
		}
		var failed []string
		for _, f := range res.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier)
		}
		if !slices.Equal(failed, want) {
			return fmt.Errorf("delivery %d: batchItemFailures %v, want %v", delivery, failed, want)
		}
		if calls != nil {
			wantPuts := map[int]int{1: len(ev.Records) - 1, 2: 0}[delivery]
			if got := writes(calls, d.table("OrdersTable")); got != wantPuts {
				return fmt.Errorf("delivery %d: %d writes to OrdersTable, want %d", delivery, got, wantPuts)
			}
		}
		if delivery == 2 && calls != nil {
			fmt.Fprintf(d.out, "(the %d recorded orders replay: their acquire finds them COMPLETED and nothing runs;\n the malformed one is acquired, fails again and is released, so SQS redelivers it alone)\n", len(ev.Records)-1)
		}
		if err := d.printOrders(ctx); err != nil {
			return err
		}
	}
	return nil
}

// printOrders lists the orders table (read from the local server directly,
// so it does not count as the functions' calls).
func (d *demoRun) printOrders(ctx context.Context) error {
	if d.db == nil {
		return nil
	}
	out, err := d.db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(d.table("OrdersTable")), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return err
	}
	var lines []string
	for _, it := range out.Items {
		s := func(k string) string {
			switch v := it[k].(type) {
			case *types.AttributeValueMemberS:
				return v.Value
			case *types.AttributeValueMemberN:
				return v.Value
			}
			return "?"
		}
		lines = append(lines, fmt.Sprintf("  %-4s %-4s amount=%-5s recordedAt=%s", s("id"), s("customer"), s("amount"), s("recordedAt")))
	}
	sort.Strings(lines)
	fmt.Fprintf(d.out, "\nOrdersTable now holds %d orders:\n%s\n", len(lines), strings.Join(lines, "\n"))
	return nil
}
