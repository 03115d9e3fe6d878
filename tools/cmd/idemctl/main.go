// Command idemctl inspects and removes idemlambda idempotency records, for
// the on-call engineer: why is this request stuck on 409, re-run this one
// order. It works on a DynamoDB table (--table; the SDK's default config,
// AWS_ENDPOINT_URL_DYNAMODB honoured) or a Redis database (--redis URL).
//
//	idemctl inspect --table T (--id ID | --name N [--step S] (--key K | --json-key JSON | --scope C --method M --path P --key K))
//	idemctl list    --table T --name N [--in-progress|--stuck|--expired]
//	idemctl forget  --table T (record as for inspect) [--force]
//	idemctl purge   --table T --name N [--yes]
//
// Every command takes --json for machine-readable output.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

// adminStore is what idemctl needs of a store.
type adminStore interface {
	idempotent.Lister
	idempotent.Deleter
}

// opts are the flags every command shares.
type opts struct {
	table, redis, prefix         string
	asJSON                       bool
	id, name, step, key, jsonKey string
	scope, method, path          string
	force, yes                   bool
	inProgress, stuck, expired   bool
	limit                        int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, clock func() time.Time) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: idemctl inspect|list|forget|purge --table T ... (idemctl CMD -h)")
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("idemctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o opts
	fs.StringVar(&o.table, "table", "", "DynamoDB table of the records")
	fs.StringVar(&o.redis, "redis", "", "Redis URL of the records (redis://host:port/db)")
	fs.StringVar(&o.prefix, "prefix", redisstore.DefaultKeyPrefix, "Redis key prefix (redisstore.Options.KeyPrefix)")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	fs.StringVar(&o.id, "id", "", "record id (<name>#<sha256 hex>)")
	fs.StringVar(&o.name, "name", "", "key namespace (WithName; default of the library: the function name)")
	fs.StringVar(&o.step, "step", "", "Do's step name")
	fs.StringVar(&o.key, "key", "", "raw key: WithKeyFunc's string, Do's key or the Idempotency-Key header")
	fs.StringVar(&o.jsonKey, "json-key", "", "the JSON value a key path selects (or the whole event)")
	fs.StringVar(&o.scope, "scope", "", "HTTP: the caller scope (empty: anonymous)")
	fs.StringVar(&o.method, "method", "", "HTTP: request method")
	fs.StringVar(&o.path, "path", "", "HTTP: request path")
	fs.BoolVar(&o.force, "force", false, "forget: delete an in-progress record too")
	fs.BoolVar(&o.yes, "yes", false, "purge: delete (default: dry run)")
	fs.BoolVar(&o.inProgress, "in-progress", false, "list: in-progress records only")
	fs.BoolVar(&o.stuck, "stuck", false, "list: in-progress records past their lease only")
	fs.BoolVar(&o.expired, "expired", false, "list: expired records only")
	fs.IntVar(&o.limit, "page", 0, "items examined per page (0: the store's default)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	c := &ctl{o: o, out: stdout, errw: stderr, now: clock}
	var err error
	if c.store, err = openStore(ctx, o); err == nil {
		switch cmd {
		case "inspect":
			err = c.inspect(ctx)
		case "list":
			err = c.list(ctx, false)
		case "forget":
			err = c.forget(ctx)
		case "purge":
			err = c.list(ctx, true)
		default:
			err = fmt.Errorf("unknown command %q (inspect, list, forget, purge)", cmd)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "idemctl:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// TableNotFoundError says the table does not exist where the config points.
type TableNotFoundError struct{ Table string }

func (e *TableNotFoundError) Error() string {
	return fmt.Sprintf("table %q not found (check --table, the Region and AWS_ENDPOINT_URL_DYNAMODB)", e.Table)
}

// KeySchemaError says the table's key is not the attribute the records use.
type KeySchemaError struct{ Table, Want, Got string }

func (e *KeySchemaError) Error() string {
	return fmt.Sprintf("table %q has partition key %q, the records' id attribute is %q: not an idemlambda table with these attribute names", e.Table, e.Got, e.Want)
}

func openStore(ctx context.Context, o opts) (adminStore, error) {
	switch {
	case o.redis != "" && o.table != "":
		return nil, fmt.Errorf("%w: give --table or --redis, not both", errUsage)
	case o.redis != "":
		ro, err := redis.ParseURL(o.redis)
		if err != nil {
			return nil, fmt.Errorf("%w: --redis: %w", errUsage, err)
		}
		client := redis.NewClient(ro)
		if err := client.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("redis %s: %w", ro.Addr, err)
		}
		return redisstore.New(client, redisstore.WithKeyPrefix(o.prefix)), nil
	case o.table == "":
		return nil, fmt.Errorf("%w: --table or --redis is required", errUsage)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS config: %w", err)
	}
	client := dynamodb.NewFromConfig(cfg)
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(o.table)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, &TableNotFoundError{Table: o.table}
	}
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", o.table, err)
	}
	for _, k := range desc.Table.KeySchema {
		if k.KeyType == types.KeyTypeHash && aws.ToString(k.AttributeName) != dynamostore.DefaultKeyAttr {
			return nil, &KeySchemaError{Table: o.table, Want: dynamostore.DefaultKeyAttr, Got: aws.ToString(k.AttributeName)}
		}
	}
	s := dynamostore.New(client, o.table)
	return s, s.Err()
}

type ctl struct {
	o     opts
	store adminStore
	out   io.Writer
	errw  io.Writer
	now   func() time.Time
}

// recordID is the id the flags name, computed as the library derives it.
func (c *ctl) recordID() (string, error) {
	o := c.o
	switch {
	case o.id != "":
		return o.id, nil
	case o.name == "":
		return "", fmt.Errorf("%w: give --id, or --name with the raw key", errUsage)
	case o.method != "" || o.path != "":
		if o.key == "" {
			return "", fmt.Errorf("%w: an HTTP key needs --key (the Idempotency-Key header)", errUsage)
		}
		return idemhttp.RecordID(o.name, o.scope, o.method, o.path, o.key), nil
	case o.step != "":
		return idempotent.StepRecordID(o.name, o.step, o.key), nil
	case o.jsonKey != "":
		m, err := idempotent.KeyMaterialJSON([]byte(o.jsonKey))
		if err != nil {
			return "", fmt.Errorf("--json-key: %w", err)
		}
		return idempotent.RecordID(o.name, m), nil
	case o.key != "":
		return idempotent.RecordID(o.name, o.key), nil
	}
	return "", fmt.Errorf("%w: --name needs --key, --json-key, --step or --method/--path", errUsage)
}

// view is a record as idemctl prints it.
type view struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`
	State          string     `json:"state"`
	Owner          string     `json:"owner,omitempty"`
	LeaseEnd       *time.Time `json:"leaseEnd,omitempty"`
	Expiration     time.Time  `json:"expiration"`
	StoredBytes    int        `json:"storedBytes"`
	Chunks         int        `json:"chunks"`
	HasFingerprint bool       `json:"fingerprint"`
}

func (c *ctl) view(info *idempotent.RecordInfo) view {
	r := info.Record
	v := view{ID: r.ID, Status: string(r.Status), Owner: r.Owner, Expiration: r.Expiration.UTC(),
		StoredBytes: info.StoredBytes, Chunks: info.Chunks, HasFingerprint: r.Fingerprint != ""}
	now := c.now()
	switch {
	case r.Expired(now):
		v.State = "expired"
	case r.Status == idempotent.StatusInProgress && r.LeaseEnded(now):
		v.State = "stuck"
	case r.Status == idempotent.StatusInProgress:
		v.State = "running"
	default:
		v.State = "completed"
	}
	if r.Status == idempotent.StatusInProgress {
		t := r.LeaseExpiration.UTC()
		v.LeaseEnd = &t
	}
	return v
}

func (c *ctl) print(v view) {
	if c.o.asJSON {
		_ = json.NewEncoder(c.out).Encode(v)
		return
	}
	fmt.Fprintf(c.out, "record      %s\nstatus      %s (%s)\n", v.ID, v.Status, v.State)
	if v.Owner != "" {
		fmt.Fprintf(c.out, "owner       %s\n", v.Owner)
	}
	if v.LeaseEnd != nil {
		fmt.Fprintf(c.out, "lease end   %s (%s)\n", v.LeaseEnd.Format(time.RFC3339Nano), rel(v.LeaseEnd.Sub(c.now())))
	}
	fmt.Fprintf(c.out, "expiration  %s (%s)\nstored      %d bytes, %d chunks\nfingerprint %v\n",
		v.Expiration.Format(time.RFC3339), rel(v.Expiration.Sub(c.now())), v.StoredBytes, v.Chunks, v.HasFingerprint)
}

func rel(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		return (-d).String() + " ago"
	}
	return "in " + d.String()
}

func (c *ctl) lookup(ctx context.Context) (*idempotent.RecordInfo, error) {
	id, err := c.recordID()
	if err != nil {
		return nil, err
	}
	if c.o.id == "" && !c.o.asJSON {
		fmt.Fprintf(c.errw, "record id: %s\n", id)
	}
	info, err := c.store.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, &NoRecordError{ID: id}
	}
	return info, nil
}

// NoRecordError says there is no record with the id.
type NoRecordError struct{ ID string }

func (e *NoRecordError) Error() string {
	return "no record " + e.ID + " (never written, forgotten, or deleted by TTL)"
}

func (c *ctl) inspect(ctx context.Context) error {
	info, err := c.lookup(ctx)
	if err != nil {
		return err
	}
	c.print(c.view(info))
	return nil
}

func (c *ctl) forget(ctx context.Context) error {
	info, err := c.lookup(ctx)
	if err != nil {
		return err
	}
	v := c.view(info)
	if v.State == "running" && !c.o.force {
		return fmt.Errorf("record %s is in progress, its lease ends %s: an invocation may be running it; refusing (--force deletes it anyway)", v.ID, rel(v.LeaseEnd.Sub(c.now())))
	}
	if err := c.store.Delete(ctx, info.Record); err != nil {
		return err
	}
	if c.o.asJSON {
		return json.NewEncoder(c.out).Encode(map[string]any{"forgotten": v.ID, "record": v})
	}
	fmt.Fprintf(c.out, "forgot %s (%s); the next request with its key runs again\n", v.ID, v.State)
	return nil
}

// list pages through the records of --name, printing those the filters
// keep; with purge it deletes them (--yes) or counts them (dry run).
func (c *ctl) list(ctx context.Context, purge bool) error {
	if c.o.name == "" {
		return fmt.Errorf("%w: --name is required", errUsage)
	}
	var matched, deleted, changed, scanned, foreign int
	var capacity float64
	cursor := ""
	for {
		page, err := c.store.List(ctx, idempotent.ListQuery{Name: c.o.name, Cursor: cursor, Limit: c.o.limit})
		if err != nil {
			return err
		}
		scanned += page.Scanned
		foreign += page.Foreign
		capacity += page.Capacity
		for i := range page.Records {
			v := c.view(&page.Records[i])
			if !c.keep(v) {
				continue
			}
			matched++
			switch {
			case !purge:
				if c.o.asJSON {
					_ = json.NewEncoder(c.out).Encode(v)
				} else {
					fmt.Fprintf(c.out, "%s  %-11s %-9s expires %s\n", v.ID, v.Status, v.State, v.Expiration.Format(time.RFC3339))
				}
			case c.o.yes:
				err := c.store.Delete(ctx, page.Records[i].Record)
				switch {
				case errors.Is(err, idempotent.ErrRecordChanged):
					changed++
				case err != nil:
					return err
				default:
					deleted++
				}
			}
		}
		fmt.Fprintf(c.errw, "\rscanned %d items, %d records matched, %.1f read units", scanned, matched, capacity)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	fmt.Fprintln(c.errw)
	summary := map[string]any{"name": c.o.name, "scanned": scanned, "matched": matched, "foreign": foreign, "readUnits": capacity}
	if purge {
		summary["deleted"] = deleted
		summary["changed"] = changed
		summary["dryRun"] = !c.o.yes
	}
	if c.o.asJSON {
		return json.NewEncoder(c.out).Encode(summary)
	}
	switch {
	case purge && !c.o.yes:
		fmt.Fprintf(c.out, "dry run: %d records of %s would be deleted (--yes deletes them)\n", matched, c.o.name)
	case purge:
		fmt.Fprintf(c.out, "deleted %d records of %s (%d changed meanwhile and were left)\n", deleted, c.o.name, changed)
	default:
		fmt.Fprintf(c.out, "%d records", matched)
		if foreign > 0 {
			fmt.Fprintf(c.out, ", %d items under %s# that are not records", foreign, c.o.name)
		}
		fmt.Fprintln(c.out)
	}
	return nil
}

func (c *ctl) keep(v view) bool {
	switch {
	case c.o.stuck:
		return v.State == "stuck"
	case c.o.inProgress:
		return v.Status == string(idempotent.StatusInProgress)
	case c.o.expired:
		return v.State == "expired"
	}
	return true
}
