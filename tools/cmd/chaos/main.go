package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/tools/internal/chaos"
	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
}

func run() error {
	var (
		endpoint = flag.String("endpoint", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "DynamoDB-compatible server (default $AWS_ENDPOINT_URL_DYNAMODB)")
		p        chaos.Profile
		rates    = flag.String("faults", defaultRates(), "fault rates per request, kind=rate,... (kinds: reset, drop, delay, 500, throttle, throughput)")
		paths    = flag.String("paths", strings.Join(chaos.Paths(), ","), "operation paths to mix")
		timeout  = flag.Duration("timeout", 10*time.Minute, "bound on the whole run")
		keep     = flag.Bool("keep", false, "keep the table afterwards")
	)
	flag.Uint64Var(&p.Seed, "seed", 1, "seed of the fault decisions and the clients' choices")
	flag.IntVar(&p.Clients, "clients", 16, "concurrent clients (W)")
	flag.IntVar(&p.OpsPerClient, "ops", 125, "logical operations per client (N); ops = clients × ops")
	flag.IntVar(&p.Containers, "containers", 4, "simulated Lambda containers sharing the table")
	flag.Float64Var(&p.Crash, "crash", 0.06, "fraction of operations whose first invocation crashes")
	flag.Float64Var(&p.Slow, "slow", 0.06, "fraction of operations whose first invocation outlives its lease")
	flag.Float64Var(&p.Fail, "fail", 0.06, "fraction of operations whose first invocation returns an error")
	flag.Float64Var(&p.Dup, "dup", 0.15, "fraction of operations with a concurrent duplicate delivery")
	flag.DurationVar(&p.Lease, "lease", 3*time.Second, "lease of ordinary invocations")
	flag.DurationVar(&p.ShortLease, "short-lease", 300*time.Millisecond, "lease of crashing and slow invocations")
	flag.DurationVar(&p.DelayMax, "delay-max", 150*time.Millisecond, "longest injected delay")
	flag.IntVar(&p.FaultAttempts, "fault-attempts", 12, "attempts per operation while faults are on, before it waits for the drain")
	flag.IntVar(&p.SDKAttempts, "sdk-attempts", 3, "the SDK retryer's attempts per request")
	flag.DurationVar(&p.Drain, "drain", time.Minute, "bound on the drain phase after faults stop")
	flag.Parse()

	if *endpoint == "" {
		return errors.New("no server: pass -endpoint or set AWS_ENDPOINT_URL_DYNAMODB (dynalite/ctl.sh run -- ... does)")
	}
	var err error
	if p.Faults, err = faultproxy.ParseRates(*rates); err != nil {
		return err
	}
	p.Paths = strings.Split(*paths, ",")

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(*endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("chaos", "chaos", ""),
	})
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := "chaos-" + strconv.FormatUint(p.Seed, 10) + "-" + hex.EncodeToString(b[:])
	quiet := func(o *dynamostore.Options) { o.Logger = slog.New(slog.DiscardHandler) }
	if err := dynamostore.CreateTable(ctx, client, table, quiet); err != nil {
		return err
	}
	if !*keep {
		defer func() {
			dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
			defer dcancel()
			_, _ = client.DeleteTable(dctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		}()
	}

	r, err := chaos.Run(ctx, chaos.Target{Endpoint: *endpoint, Table: table}, p)
	if err != nil {
		return err
	}
	r.Print(os.Stdout)
	if r.Violations() > 0 {
		if !*keep {
			fmt.Fprintf(os.Stderr, "chaos: %d violations (rerun with -keep to inspect the table)\n", r.Violations())
		} else {
			fmt.Fprintf(os.Stderr, "chaos: %d violations; table %s kept\n", r.Violations(), table)
		}
		cancel()
		os.Exit(1)
	}
	return nil
}

func defaultRates() string { return faultproxy.FormatRates(chaos.DefaultFaults()) }
