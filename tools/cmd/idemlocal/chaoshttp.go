package main

// chaos-http (make chaos, after the store run): the end-to-end exactly-once
// check through the whole HTTP stack. Many concurrent logical payments, each
// sent by a burst of 2–4 goroutines with the same Idempotency-Key at the same
// moment, go through the idemclient transport → a fault proxy (the
// answer lost after the request was served, the connection reset before it
// reached the server, delays) → the local HTTP API of `make run` → the
// payments function → DynamoDB behind a second fault proxy. Checked from the
// outside at the end, with faults off: one payment per key in the payments
// table, one body for every 2xx answer of a key, no key without an answer
// except by an exhausted retry budget (those are sent once more, to show the
// outcome can still be learnt with the key).

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
	"github.com/idemlambda/idemlambda/tools/internal/samtemplate"
)

// chaosHTTPConfig sizes a chaos-http run.
type chaosHTTPConfig struct {
	seed        uint64
	keys        int // logical payments
	workers     int // bursts in flight
	apiFaults   map[faultproxy.Kind]float64
	storeFaults map[faultproxy.Kind]float64
	budget      int // retry budget tokens shared by every request
	attempts    int // per request
	deadline    time.Duration
}

func defaultChaosHTTP() chaosHTTPConfig {
	return chaosHTTPConfig{
		seed: 1, keys: 160, workers: 8, budget: 500, attempts: 10, deadline: time.Minute,
		apiFaults:   map[faultproxy.Kind]float64{faultproxy.Reset: 0.1, faultproxy.Drop: 0.1, faultproxy.Delay: 0.1},
		storeFaults: map[faultproxy.Kind]float64{faultproxy.Reset: 0.02, faultproxy.Drop: 0.02, faultproxy.Delay: 0.05, faultproxy.InternalError: 0.02, faultproxy.Throttle: 0.02},
	}
}

// chaosHTTPReport is what a run saw.
type chaosHTTPReport struct {
	Keys, Requests                             int
	Attempts                                   int // requests that reached the API's fault proxy
	TransportAttempts                          int // attempts the idemclient transport made (net/http resends on reused connections come on top)
	APIFaults, StoreFaults                     int
	Succeeded, BudgetErrors, OtherFailures     int // per request
	Duplicates, Divergent, Missing             int // per key: violations
	Unanswered, UnansweredNotBudget, Recovered int // per key
	Payments                                   int
}

func (r *chaosHTTPReport) print(w io.Writer) {
	fmt.Fprintf(w, "chaos-http: %d requests in bursts of 2-4 per key, %d transport attempts (%d reached the API proxy: net/http resends some on reused connections); %d answered 2xx, %d ended by the retry budget, %d by another give-up; faults injected: %d on the API path, %d on the store path; %d payments in the table; %d unanswered keys recovered by a later request with the same key\n",
		r.Requests, r.TransportAttempts, r.Attempts, r.Succeeded, r.BudgetErrors, r.OtherFailures, r.APIFaults, r.StoreFaults, r.Payments, r.Recovered)
	fmt.Fprintf(w, "chaos-http: keys=%d attempts=%d faults=%d duplicates=%d divergent=%d unanswered=%d\n",
		r.Keys, r.Attempts, r.APIFaults+r.StoreFaults, r.Duplicates, r.Divergent, r.Unanswered)
}

// err fails the run on any violation.
func (r *chaosHTTPReport) err() error {
	var errs []error
	if r.Duplicates > 0 {
		errs = append(errs, fmt.Errorf("%d duplicate payments", r.Duplicates))
	}
	if r.Divergent > 0 {
		errs = append(errs, fmt.Errorf("%d keys with divergent answers", r.Divergent))
	}
	if r.Missing > 0 {
		errs = append(errs, fmt.Errorf("%d keys answered 2xx without a payment", r.Missing))
	}
	if r.UnansweredNotBudget > 0 {
		errs = append(errs, fmt.Errorf("%d keys without an answer although the retry budget was not exhausted", r.UnansweredNotBudget))
	}
	if r.Unanswered != r.Recovered {
		errs = append(errs, fmt.Errorf("%d of %d unanswered keys got no answer on a later request with the same key", r.Unanswered-r.Recovered, r.Unanswered))
	}
	if len(errs) > 0 {
		return fmt.Errorf("chaos-http: %w", errors.Join(errs...))
	}
	return nil
}

func chaosHTTP(ctx context.Context, tpl *samtemplate.Template, o options, c chaosHTTPConfig, stdout io.Writer, log *slog.Logger) error {
	r, err := runChaosHTTP(ctx, tpl, o, c, log)
	if err != nil {
		return err
	}
	r.print(stdout)
	return r.err()
}

// outcome is how one request of a burst ended.
type outcome struct {
	status int
	body   string
	err    error
}

func runChaosHTTP(ctx context.Context, tpl *samtemplate.Template, o options, c chaosHTTPConfig, log *slog.Logger) (*chaosHTTPReport, error) {
	run := strings.ToLower(rand.Text()[:8])
	o.port = "0"
	o.tablePrefix = "chaoshttp-" + run + "-"
	if o.logs == nil {
		o.logs = io.Discard
	}
	var store *faultproxy.Proxy
	o.dynamoFront = func(endpoint string) (string, error) {
		p, err := faultproxy.Start(endpoint, faultproxy.Config{Seed: c.seed, Rates: c.storeFaults})
		if err != nil {
			return "", err
		}
		store = p
		return p.URL(), nil
	}
	// The stack logs every request: only its warnings here.
	s, err := startStack(ctx, tpl, o, slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if store != nil {
		defer store.Close()
	}
	if err != nil {
		return nil, err
	}
	defer s.close()
	api, err := faultproxy.Start(s.url, faultproxy.Config{Seed: c.seed + 1, Rates: c.apiFaults})
	if err != nil {
		return nil, err
	}
	defer api.Close()

	base := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	defer base.CloseIdleConnections()
	var attempts atomic.Int64
	client := &http.Client{Transport: idemclient.NewTransport(base,
		idemclient.WithRetryBudget(idemclient.NewRetryBudget(c.budget)),
		idemclient.WithMaxAttempts(c.attempts),
		idemclient.WithBackoff(50*time.Millisecond, 2*time.Second),
		idemclient.WithMaxRetryAfter(15*time.Second), // over the function timeout (10 s): an outcome-unknown 503 is waited out, not returned
		idemclient.WithLogger(slog.New(slog.DiscardHandler)),
		idemclient.WithOnAttempt(func(idemclient.AttemptInfo) { attempts.Add(1) }),
	)}
	post := func(url, key, body string) outcome {
		rctx, cancel := context.WithTimeout(ctx, c.deadline)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, url+"/payments", strings.NewReader(body))
		if err != nil {
			return outcome{err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(idemclient.HeaderKey, key)
		resp, err := client.Do(req)
		if err != nil {
			return outcome{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return outcome{status: resp.StatusCode, body: string(b), err: err}
	}

	rng := mrand.New(mrand.NewPCG(c.seed, 12))
	keys := make([]string, c.keys)
	bodies := make([]string, c.keys)
	bursts := make([]int, c.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("chaos-%s-%04d", run, i)
		bodies[i] = fmt.Sprintf(`{"amount":%d,"currency":"EUR","customer":%q}`, 100+i, keys[i])
		bursts[i] = 2 + rng.IntN(3)
	}
	results := make([][]outcome, c.keys)
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(c.workers, 1) {
		wg.Go(func() {
			for i := range work {
				out := make([]outcome, bursts[i])
				start := make(chan struct{})
				var bg sync.WaitGroup
				for j := range out {
					bg.Go(func() {
						<-start // the whole burst at the same moment
						out[j] = post(api.URL(), keys[i], bodies[i])
					})
				}
				close(start)
				bg.Wait()
				results[i] = out
			}
		})
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Faults off; everything from here is checked from the outside.
	api.SetEnabled(false)
	store.SetEnabled(false)
	apiStats := api.Stats()
	r := &chaosHTTPReport{Keys: c.keys, Attempts: apiStats.Requests, APIFaults: apiStats.Faults(), StoreFaults: store.Stats().Faults()}
	answered := make([]string, c.keys) // the 2xx body of each key
	for i, outs := range results {
		budget := false
		for _, x := range outs {
			r.Requests++
			var be *idemclient.BudgetError
			switch {
			case x.err == nil && x.status/100 == 2:
				r.Succeeded++
				if answered[i] == "" {
					answered[i] = x.body
				} else if x.body != answered[i] {
					r.Divergent++
					log.Error("divergent answers", "key", keys[i], "first", answered[i], "other", x.body)
				}
			case errors.As(x.err, &be):
				r.BudgetErrors++
				budget = true
			case x.err == nil && x.status/100 == 4 && !retryableStatus(x.status):
				// Same key, same body: no final 4xx is right.
				r.Divergent++
				log.Error("final client error for a well-formed retry", "key", keys[i], "status", x.status, "body", x.body)
			default:
				r.OtherFailures++
				log.Info("request gave up", "key", keys[i], "status", x.status, "err", x.err)
			}
		}
		if answered[i] != "" {
			continue
		}
		r.Unanswered++
		if !budget {
			r.UnansweredNotBudget++
		}
		// The outcome is still there to learn with the key.
		if x := post(s.url, keys[i], bodies[i]); x.err == nil && x.status/100 == 2 {
			r.Recovered++
			answered[i] = x.body
		}
	}
	r.TransportAttempts = int(attempts.Load())

	counts, err := paymentsByCustomer(ctx, newDynamoClient(s.env.endpoint, o.region), o.tablePrefix+"PaymentsTable")
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		n := counts[k]
		r.Payments += n
		if n > 1 {
			r.Duplicates += n - 1
			log.Error("duplicate payments", "key", k, "payments", n)
		}
		if n == 0 && answered[i] != "" {
			r.Missing++
			log.Error("answered 2xx without a payment", "key", k, "body", answered[i])
		}
	}
	return r, nil
}

func retryableStatus(code int) bool {
	switch code {
	case 408, 409, 425, 429, 500, 502, 503, 504:
		return true
	}
	return false
}

// paymentsByCustomer counts the payments table's items per customer (the
// chaos run puts its key there), reading the server directly.
func paymentsByCustomer(ctx context.Context, db *dynamodb.Client, table string) (map[string]int, error) {
	counts := map[string]int{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, item := range page.Items {
			if s, ok := item["customer"].(*types.AttributeValueMemberS); ok {
				counts[s.Value]++
			}
		}
	}
	return counts, nil
}
