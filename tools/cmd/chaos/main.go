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
	"github.com/redis/go-redis/v9"

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
		store    = flag.String("store", "dynamodb", "store under test: dynamodb (through an HTTP fault proxy) or redis (through a TCP fault proxy)")
		endpoint = flag.String("endpoint", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "DynamoDB-compatible server (default $AWS_ENDPOINT_URL_DYNAMODB)")
		redisURL = flag.String("redis-url", os.Getenv("REDIS_URL"), "Redis server for -store redis (default $REDIS_URL); the run's keys go under a fresh prefix")
		p        chaos.Profile
		rates    = flag.String("faults", "", "fault rates per request, kind=rate,... (kinds: reset, drop, delay, 500, throttle, throughput; redis injects only reset, drop, delay); default "+defaultRates(chaos.DefaultFaults())+" for dynamodb, "+defaultRates(chaos.DefaultRedisFaults())+" for redis")
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

	if *rates == "" {
		*rates = defaultRates(chaos.DefaultFaults())
		if *store == "redis" {
			*rates = defaultRates(chaos.DefaultRedisFaults())
		}
	}
	var err error
	if p.Faults, err = faultproxy.ParseRates(*rates); err != nil {
		return err
	}
	p.Paths = strings.Split(*paths, ",")

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "chaos-" + strconv.FormatUint(p.Seed, 10) + "-" + hex.EncodeToString(b[:])

	switch *store {
	case "dynamodb":
		return runDynamo(ctx, cancel, *endpoint, name, *keep, p)
	case "redis":
		return runRedis(ctx, cancel, *redisURL, name+":", *keep, p)
	default:
		return fmt.Errorf("unknown -store %q (dynamodb or redis)", *store)
	}
}

func runDynamo(ctx context.Context, cancel context.CancelFunc, endpoint, table string, keep bool, p chaos.Profile) error {
	if endpoint == "" {
		return errors.New("no server: pass -endpoint or set AWS_ENDPOINT_URL_DYNAMODB (dynalite/ctl.sh run -- ... does)")
	}
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("chaos", "chaos", ""),
	})
	quiet := func(o *dynamostore.Options) { o.Logger = slog.New(slog.DiscardHandler) }
	if err := dynamostore.CreateTable(ctx, client, table, quiet); err != nil {
		return err
	}
	if !keep {
		defer func() {
			dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
			defer dcancel()
			_, _ = client.DeleteTable(dctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		}()
	}

	r, err := chaos.Run(ctx, chaos.Target{Endpoint: endpoint, Table: table}, p)
	if err != nil {
		return err
	}
	r.Print(os.Stdout)
	if r.Violations() > 0 {
		if !keep {
			fmt.Fprintf(os.Stderr, "chaos: %d violations (rerun with -keep to inspect the table)\n", r.Violations())
		} else {
			fmt.Fprintf(os.Stderr, "chaos: %d violations; table %s kept\n", r.Violations(), table)
		}
		cancel()
		os.Exit(1)
	}
	return nil
}

// runRedis runs p on the Redis server at url, its records under prefix,
// and deletes them afterwards unless keep.
func runRedis(ctx context.Context, cancel context.CancelFunc, url, prefix string, keep bool, p chaos.Profile) error {
	if url == "" {
		return errors.New("no server: pass -redis-url or set REDIS_URL (redis/ctl.sh run -- ... does)")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("-redis-url: %w", err)
	}
	if opts.Password != "" || opts.Username != "" || opts.TLSConfig != nil || opts.DB != 0 {
		return errors.New("-redis-url: the fault proxy relays plain TCP to database 0 without auth; pass redis://host:port")
	}
	client := redis.NewClient(opts)
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", opts.Addr, err)
	}
	if !keep {
		defer func() {
			dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
			defer dcancel()
			it := client.Scan(dctx, 0, prefix+"*", 512).Iterator()
			for it.Next(dctx) {
				_ = client.Del(dctx, it.Val()).Err()
			}
		}()
	}

	r, err := chaos.Run(ctx, chaos.Target{Redis: opts.Addr, KeyPrefix: prefix}, p)
	if err != nil {
		return err
	}
	r.Print(os.Stdout)
	if r.Violations() > 0 {
		if !keep {
			fmt.Fprintf(os.Stderr, "chaos-redis: %d violations (rerun with -keep to inspect the keys)\n", r.Violations())
		} else {
			fmt.Fprintf(os.Stderr, "chaos-redis: %d violations; keys %s* kept\n", r.Violations(), prefix)
		}
		cancel()
		os.Exit(1)
	}
	return nil
}

func defaultRates(m map[faultproxy.Kind]float64) string { return faultproxy.FormatRates(m) }
