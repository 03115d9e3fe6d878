// Command idemlocal runs this repository's SAM application on this machine,
// without Docker, SAM CLI or an AWS account: it reads template.yaml, builds
// each function for the host, creates the template's DynamoDB tables on a local
// DynamoDB-compatible server (dynalite, started from ./dynalite unless
// AWS_ENDPOINT_URL_DYNAMODB is set), runs each function under AWS's Lambda
// Runtime Interface Emulator (aws-lambda-rie, one process per execution
// environment, see tools/internal/rie) and serves their HttpApi routes.
//
//	idemlocal run    [-port 3000] [-template template.yaml] [-param Name=Value]...
//	idemlocal invoke -fn OrdersFunction -event events/sqs-orders.json
//	idemlocal invoke FN=OrdersFunction EVENT=events/sqs-orders.json
//	idemlocal demo   [-url http://127.0.0.1:3000]
//	idemlocal chaos-http [-seed 1] [-keys 160] [-workers 8] [-budget 500]
//
// Besides the HttpApi routes, run serves the Lambda Invoke API for every
// function of the template, as `sam local start-lambda` does:
// POST /2015-03-31/functions/<LogicalId>/invocations with the event as body.
//
// demo is a scripted tour of the idempotency contract (see demo.go): it starts
// its own stack unless -url names one that runs already.
//
// Local only: there is no authorizer. A bearer JWT's claims are decoded WITHOUT
// verification and passed in requestContext.authorizer.jwt.claims.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
	"github.com/idemlambda/idemlambda/tools/internal/rie"
	"github.com/idemlambda/idemlambda/tools/internal/samtemplate"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, log); err != nil {
		log.Error("idemlocal", "err", err)
		stop()
		os.Exit(1)
	}
}

const usage = `usage:
  idemlocal run    [flags]                      serve the template's HttpApi routes on 127.0.0.1:$PORT (3000)
  idemlocal invoke [flags] FN=ID EVENT=FILE     send one event (FILE or - for stdin) to a function, print the answer
                                                (on a fresh stack of its own, or on a running one with -url URL)
  idemlocal demo   [-url URL]                   scripted tour: replay, 409, 422, an SQS batch delivered twice
  idemlocal chaos-http [flags]                  exactly-once check through the whole HTTP stack under faults (chaoshttp.go)
  (-fn ID and -event FILE work too)`

// errFunctionError makes invoke exit non-zero after printing a handler error.
var errFunctionError = errors.New("the function returned an error")

type options struct {
	template  string
	buildDir  string
	dynalite  string
	region    string
	params    paramFlag
	port      string
	instances int
	// maxConcurrency is the invocations one environment serves at once
	// (-max-concurrency; a function's PerExecutionEnvironmentMaxConcurrency
	// in the template wins); above 1 the emulator runs in managed-instances
	// mode.
	maxConcurrency int
	fn, event      string
	url            string // -url: a running `idemlocal run` for demo and invoke
	// rie is the aws-lambda-rie executable; rie.Locate finds it when empty.
	rie string
	// tablePrefix is put before every table's local name (tests use a fresh one).
	tablePrefix string
	// logs receives the functions' output (os.Stderr when nil).
	logs io.Writer
	// dynamoFront, when set, returns the DynamoDB endpoint given to the
	// functions in front of the real one (the demo's counting proxy).
	dynamoFront func(endpoint string) (string, error)
}

type paramFlag map[string]string

func (p paramFlag) String() string { return fmt.Sprint(map[string]string(p)) }
func (p paramFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want Name=Value, got %q", s)
	}
	p[k] = v
	return nil
}

func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 || (args[0] != "run" && args[0] != "invoke" && args[0] != "demo" && args[0] != "chaos-http") {
		return errors.New(usage)
	}
	cmd := args[0]
	o := options{params: paramFlag{}}
	fs := flag.NewFlagSet("idemlocal "+cmd, flag.ContinueOnError)
	fs.StringVar(&o.template, "template", "template.yaml", "SAM template")
	fs.StringVar(&o.buildDir, "build-dir", ".build/idemlocal", "where host builds of the functions go")
	fs.StringVar(&o.dynalite, "dynalite", "dynalite", "folder of the dynalite npm package, used when AWS_ENDPOINT_URL_DYNAMODB is unset")
	fs.StringVar(&o.region, "region", "us-east-1", "AWS_REGION given to the functions")
	fs.Var(o.params, "param", "template parameter override Name=Value (repeatable)")
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	fs.StringVar(&o.port, "port", port, "HTTP port on 127.0.0.1 (default $PORT or 3000)")
	fs.IntVar(&o.instances, "instances", 2, "execution environments (aws-lambda-rie processes) per function, i.e. its concurrency")
	fs.IntVar(&o.maxConcurrency, "max-concurrency", 1, "invocations one execution environment serves at once (Lambda Managed Instances); above 1 the emulator runs in its managed-instances mode (Linux, root). A function's CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency in the template overrides it")
	fs.StringVar(&o.rie, "rie", "", "the aws-lambda-rie executable (default: .build/bin/aws-lambda-rie next to the template, else PATH)")
	fs.StringVar(&o.fn, "fn", "", "invoke: the function's logical id")
	fs.StringVar(&o.event, "event", "", "invoke: event JSON file, - for stdin")
	fs.StringVar(&o.tablePrefix, "table-prefix", "", "name the local tables <prefix><LogicalId>, to share one DynamoDB server")
	fs.StringVar(&o.url, "url", "", "demo, invoke: base URL of a running `idemlocal run` to use instead of a fresh stack of their own")
	ch := defaultChaosHTTP()
	apiFaults, storeFaults := faultproxy.FormatRates(ch.apiFaults), faultproxy.FormatRates(ch.storeFaults)
	fs.Uint64Var(&ch.seed, "seed", ch.seed, "chaos-http: seed of the fault decisions and the bursts")
	fs.IntVar(&ch.keys, "keys", ch.keys, "chaos-http: logical payments (keys)")
	fs.IntVar(&ch.workers, "workers", ch.workers, "chaos-http: bursts in flight")
	fs.IntVar(&ch.budget, "budget", ch.budget, "chaos-http: retry budget tokens shared by every request")
	fs.IntVar(&ch.attempts, "attempts", ch.attempts, "chaos-http: attempts per request")
	fs.StringVar(&apiFaults, "api-faults", apiFaults, "chaos-http: fault rates between the client and the HTTP API, kind=rate,...")
	fs.StringVar(&storeFaults, "store-faults", storeFaults, "chaos-http: fault rates between the functions and DynamoDB, kind=rate,...")
	// Flags and NAME=VALUE arguments in any order (make invoke passes FN= and
	// EVENT= first and -url after them).
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		a := fs.Arg(0)
		rest = fs.Args()[1:]
		switch k, v, _ := strings.Cut(a, "="); k {
		case "FN":
			o.fn = v
		case "EVENT":
			o.event = v
		default:
			return fmt.Errorf("unexpected argument %q\n%s", a, usage)
		}
	}
	tpl, err := samtemplate.ParseFile(o.template)
	if err != nil {
		return err
	}
	switch cmd {
	case "chaos-http":
		if ch.apiFaults, err = faultproxy.ParseRates(apiFaults); err != nil {
			return err
		}
		if ch.storeFaults, err = faultproxy.ParseRates(storeFaults); err != nil {
			return err
		}
		return chaosHTTP(ctx, tpl, o, ch, stdout, log)
	case "invoke":
		return invokeOnce(ctx, tpl, o, stdout, log)
	case "demo":
		return demo(ctx, tpl, o, stdout, log)
	}
	return serve(ctx, tpl, o, stdout, log)
}

// env is a running local stack: the DynamoDB endpoint and started functions.
type env struct {
	endpoint  string // DynamoDB
	functions map[string]*rie.Function
	cleanup   []func()
}

func (e *env) close() {
	for _, fn := range e.functions {
		fn.Close()
	}
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
}

// setUp prepares DynamoDB and starts the named functions (all when ids is empty).
func setUp(ctx context.Context, tpl *samtemplate.Template, o options, ids []string, log *slog.Logger) (*env, error) {
	e := &env{functions: map[string]*rie.Function{}}
	fns := tpl.Functions()
	if len(ids) > 0 {
		fns = nil
		for _, id := range ids {
			fn, ok := tpl.Function(id)
			if !ok {
				return nil, fmt.Errorf("no function %q in %s (have %s)", id, o.template, strings.Join(functionIDs(tpl), ", "))
			}
			fns = append(fns, fn)
		}
	}
	root := filepath.Dir(o.template)
	emulator := o.rie
	if emulator == "" {
		var err error
		if emulator, err = rie.Locate(root); err != nil {
			return nil, err
		}
	}
	binaries := map[string]string{}
	for _, fn := range fns {
		log.Info("building", "function", fn.LogicalID, "package", fn.HandlerPackage())
		bin, err := buildFunction(ctx, root, o.buildDir, fn, os.Stderr)
		if err != nil {
			return nil, err
		}
		binaries[fn.LogicalID] = bin
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if endpoint == "" {
		ep, stop, err := startDynalite(ctx, filepath.Join(root, o.dynalite), log)
		if err != nil {
			return nil, err
		}
		endpoint = ep
		e.cleanup = append(e.cleanup, stop)
	} else {
		log.Info("using the DynamoDB endpoint from AWS_ENDPOINT_URL_DYNAMODB", "endpoint", endpoint)
	}
	e.endpoint = endpoint
	if err := createTables(ctx, newDynamoClient(endpoint, o.region), tpl.Tables(), o.tablePrefix, log); err != nil {
		e.close()
		return nil, err
	}
	fnEndpoint := endpoint
	if o.dynamoFront != nil {
		var err error
		if fnEndpoint, err = o.dynamoFront(endpoint); err != nil {
			e.close()
			return nil, err
		}
	}
	logs := o.logs
	if logs == nil {
		logs = os.Stderr
	}
	resolver := localResolver(tpl, o)
	if u := os.Getenv("REDIS_URL"); u != "" {
		log.Info("idempotency records are kept in Redis (make run STORE=redis); the DynamoDB tables hold the examples' own items", "redis", u)
	}
	var mu sync.Mutex
	for _, fn := range fns {
		vars := map[string]string{}
		for k, v := range fn.Environment {
			s, err := resolver.Resolve(v)
			if err != nil {
				e.close()
				return nil, fmt.Errorf("%s: environment variable %s: %w", fn.LogicalID, k, err)
			}
			vars[k] = s
		}
		maxConcurrency, err := functionConcurrency(fn, resolver, o.maxConcurrency)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("%s: %w", fn.LogicalID, err)
		}
		vars["AWS_ENDPOINT_URL_DYNAMODB"] = fnEndpoint
		if u := os.Getenv("REDIS_URL"); u != "" {
			vars["REDIS_URL"] = u // the functions keep their idempotency records in Redis (make run STORE=redis)
		}
		vars["AWS_ACCESS_KEY_ID"] = localAccessKey
		vars["AWS_SECRET_ACCESS_KEY"] = localSecretKey
		out := &prefixWriter{mu: &mu, w: logs, prefix: "[" + fn.LogicalID + "] "}
		f, err := rie.Start(ctx, rie.Config{
			RIE:            emulator,
			Binary:         binaries[fn.LogicalID],
			Name:           fn.LogicalID,
			Env:            vars,
			Timeout:        time.Duration(fn.Timeout) * time.Second,
			MemoryMB:       fn.MemorySize,
			Region:         o.region,
			Handler:        fn.Handler,
			Instances:      o.instances,
			MaxConcurrency: maxConcurrency,
			Output:         out,
			Logger:         log,
		})
		if err != nil {
			e.close()
			return nil, err
		}
		e.functions[fn.LogicalID] = f
		log.Info("function ready under aws-lambda-rie", "function", fn.LogicalID, "instances", o.instances, "maxConcurrency", max(1, maxConcurrency),
			"timeout", time.Duration(fn.Timeout)*time.Second, "memoryMB", fn.MemorySize)
	}
	return e, nil
}

// localResolver resolves template values for the local run: tables and other
// resources are named by their logical id (tables after o.tablePrefix).
func localResolver(tpl *samtemplate.Template, o options) *samtemplate.Resolver {
	names := map[string]string{}
	for id := range tpl.Resources {
		names[id] = id
	}
	for _, t := range tpl.Tables() {
		names[t.LogicalID] = o.tablePrefix + t.LogicalID
	}
	return &samtemplate.Resolver{
		Template: tpl,
		Params:   o.params,
		Names:    names,
		Pseudo:   map[string]string{"AWS::Region": o.region},
	}
}

func functionIDs(tpl *samtemplate.Template) []string {
	var ids []string
	for _, fn := range tpl.Functions() {
		ids = append(ids, fn.LogicalID)
	}
	return ids
}

// routes lists the template's HttpApi events.
func routes(tpl *samtemplate.Template) []route {
	var out []route
	for _, fn := range tpl.Functions() {
		for _, ev := range fn.Events {
			if ev.Type != "HttpApi" {
				continue
			}
			rt := route{method: ev.Method, path: ev.Path, function: fn.LogicalID}
			if rt.method == "" || rt.method == "ANY" || rt.method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
				rt.method = "ANY"
			}
			if rt.path == "" {
				rt.path = "$default"
			}
			out = append(out, rt)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return out[i].method < out[j].method
	})
	return out
}

// stack is a running local stack: functions, DynamoDB and the HTTP API.
type stack struct {
	env  *env
	srv  *http.Server
	url  string // http://127.0.0.1:port
	errc chan error
}

// startStack listens on 127.0.0.1:o.port (0: a free port), sets up DynamoDB
// and the functions and serves the HTTP API (and the Invoke API) in the
// background until close.
func startStack(ctx context.Context, tpl *samtemplate.Template, o options, log *slog.Logger) (*stack, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", o.port))
	if err != nil {
		return nil, err
	}
	e, err := setUp(ctx, tpl, o, nil, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	api := &httpAPI{
		routes: routes(tpl),
		log:    log,
		now:    time.Now,
		newID:  newRequestID,
		invoke: func(ctx context.Context, id string, payload []byte) (rie.Result, error) {
			fn, ok := e.functions[id]
			if !ok {
				return rie.Result{}, fmt.Errorf("%w: %s (have %s)", errNoFunction, id, strings.Join(functionIDs(tpl), ", "))
			}
			return fn.Invoke(ctx, payload, "")
		},
	}
	s := &stack{
		env:  e,
		srv:  &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + ln.Addr().String(),
		errc: make(chan error, 1),
	}
	go func() { s.errc <- s.srv.Serve(ln) }()
	return s, nil
}

// close stops the HTTP server (waiting up to 5 s for requests in flight), the
// functions and the DynamoDB server the stack started.
func (s *stack) close() error {
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	s.env.close()
	return err
}

func serve(ctx context.Context, tpl *samtemplate.Template, o options, stdout io.Writer, log *slog.Logger) error {
	s, err := startStack(ctx, tpl, o, log)
	if err != nil {
		if ctx.Err() != nil { // Ctrl-C (or SIGTERM) while starting: a normal end
			log.Info("interrupted while starting; stopped", "err", err)
			return nil
		}
		return err
	}
	printBanner(stdout, tpl, routes(tpl), s.url)
	log.Warn("local only: no authorizer runs; a bearer JWT's claims are passed to the function UNVERIFIED")
	select {
	case err := <-s.errc:
		s.env.close()
		return err
	case <-ctx.Done():
		// Ctrl-C or SIGTERM is how a local server ends: exit 0 once stopped.
		log.Info("shutting down (signal received)")
		if err := s.close(); err != nil {
			log.Warn("requests still in flight were cut off", "err", err)
		}
		log.Info("stopped")
		return nil
	}
}

func printBanner(w io.Writer, tpl *samtemplate.Template, rts []route, base string) {
	fmt.Fprintf(w, "\nidemlocal: the HTTP API is on %s, each function under aws-lambda-rie (local only: no authorizer; JWT claims are NOT verified)\n", base)
	for _, rt := range rts {
		fmt.Fprintf(w, "  %-6s %-22s -> %s\n", rt.method, rt.path, rt.function)
	}
	for _, fn := range tpl.Functions() {
		for _, ev := range fn.Events {
			if ev.Type == "SQS" {
				fmt.Fprintf(w, "  SQS    %-22s -> %s (no local queue: make invoke FN=%s EVENT=events/sqs-orders.json URL=%s)\n",
					queueName(ev.Queue), fn.LogicalID, fn.LogicalID, base)
			}
		}
	}
	fmt.Fprintf(w, `
Try it (run the first command twice: the second answer is a replay and carries "Idempotent-Replayed: true"):
  curl -si -X POST %[1]s/payments -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \
    -d '{"amount":1250,"currency":"EUR","customer":"c-1"}'
The same key with another body is rejected with 422:
  curl -si -X POST %[1]s/payments -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \
    -d '{"amount":9999,"currency":"EUR","customer":"c-1"}'
Any function through the Lambda Invoke API (sharing this stack's tables):
  curl -s %[1]s/2015-03-31/functions/OrdersFunction/invocations -d @events/sqs-orders.json
The scripted tour against this stack: make demo URL=%[1]s
Stop with Ctrl-C.

`, base)
}

func queueName(q any) string {
	if in, ok := q.(samtemplate.Intrinsic); ok {
		if parts, ok := in.Arg.([]any); ok && len(parts) > 0 {
			return fmt.Sprint(parts[0])
		}
		return fmt.Sprint(in.Arg)
	}
	return fmt.Sprint(q)
}

func invokeOnce(ctx context.Context, tpl *samtemplate.Template, o options, stdout io.Writer, log *slog.Logger) error {
	if o.fn == "" || o.event == "" {
		return fmt.Errorf("invoke needs the function and the event: make invoke FN=<LogicalId> EVENT=<file.json> [URL=http://127.0.0.1:3000]\n"+
			"  FN is one of %s; e.g. make invoke FN=OrdersFunction EVENT=events/sqs-orders.json\n"+
			"  (without URL it runs on a fresh stack of its own; with URL, on the stack `make run` serves)",
			strings.Join(functionIDs(tpl), ", "))
	}
	if _, ok := tpl.Function(o.fn); !ok && o.url == "" {
		return fmt.Errorf("no function %q in %s (have %s)", o.fn, o.template, strings.Join(functionIDs(tpl), ", "))
	}
	var payload []byte
	var err error
	if o.event == "-" {
		payload, err = io.ReadAll(os.Stdin)
	} else {
		payload, err = os.ReadFile(o.event)
	}
	if err != nil {
		return err
	}
	if !json.Valid(payload) {
		return fmt.Errorf("%s is not JSON", o.event)
	}
	var res rie.Result
	if o.url != "" {
		res, err = invokeRemote(ctx, o.url, o.fn, payload)
	} else {
		o.instances = 1
		var e *env
		if e, err = setUp(ctx, tpl, o, []string{o.fn}, log); err != nil {
			return err
		}
		defer e.close()
		res, err = e.functions[o.fn].Invoke(ctx, payload, "")
	}
	if err != nil {
		return err
	}
	log.Info("invoked", "function", o.fn, "requestId", res.RequestID)
	if res.Err != nil {
		out, _ := json.MarshalIndent(res.Err, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return fmt.Errorf("%w: %s", errFunctionError, res.Err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, res.Payload, "", "  ") == nil {
		fmt.Fprintf(stdout, "%s\n", pretty.Bytes())
	} else {
		fmt.Fprintf(stdout, "%s\n", res.Payload)
	}
	return nil
}

// invokeRemote calls a function through the Invoke API of a running
// `idemlocal run` at base.
func invokeRemote(ctx context.Context, base, fn string, payload []byte) (rie.Result, error) {
	u := strings.TrimSuffix(base, "/") + invokePrefix + url.PathEscape(fn) + "/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return rie.Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rie.Result{}, fmt.Errorf("is `make run` serving %s? %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, rie.MaxPayloadSize+1))
	if err != nil {
		return rie.Result{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return rie.Result{}, fmt.Errorf("%s: %s %s", u, resp.Status, bytes.TrimSpace(body))
	}
	res := rie.Result{RequestID: resp.Header.Get("X-Amzn-Requestid")}
	if resp.Header.Get("X-Amz-Function-Error") != "" {
		res.Err = &rie.FunctionError{}
		if err := json.Unmarshal(body, res.Err); err != nil {
			return rie.Result{}, fmt.Errorf("%s: malformed function error %q: %w", u, body, err)
		}
		return res, nil
	}
	res.Payload = body
	return res, nil
}

// functionConcurrency is the MaxConcurrency of one function: its
// template's CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency
// (what Lambda Managed Instances run it with) if set, else def
// (-max-concurrency; 0 is 1).
func functionConcurrency(fn samtemplate.Function, r *samtemplate.Resolver, def int) (int, error) {
	if def < 0 {
		return 0, fmt.Errorf("-max-concurrency %d is negative", def)
	}
	def = max(def, 1) // 0: on-demand
	cp, _ := fn.Properties["CapacityProviderConfig"].(map[string]any)
	mi, _ := cp["LambdaManagedInstancesCapacityProviderConfig"].(map[string]any)
	v, ok := mi["PerExecutionEnvironmentMaxConcurrency"]
	if !ok {
		return def, nil
	}
	s, err := r.Resolve(v)
	if err != nil {
		return 0, fmt.Errorf("PerExecutionEnvironmentMaxConcurrency: %w", err)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1600 {
		return 0, fmt.Errorf("PerExecutionEnvironmentMaxConcurrency %q is not an integer from 1 to 1600", s)
	}
	return n, nil
}
