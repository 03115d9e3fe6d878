package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/idemlambda/idemlambda/tools/internal/samtemplate"
)

// startDynalite runs the pinned dynalite (in memory) on a free loopback port
// and returns its endpoint once it says it is listening, and a stop function.
func startDynalite(ctx context.Context, dir string, log *slog.Logger) (string, func(), error) {
	cli := filepath.Join(dir, "node_modules", "dynalite", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return "", nil, fmt.Errorf("local DynamoDB server not installed (%v): run `npm ci --prefix %s` or set AWS_ENDPOINT_URL_DYNAMODB", err, dir)
	}
	cli = filepath.Join(dir, "serve.js") // dynalite's command line, kept up when a client aborts a request
	node, err := exec.LookPath("node")
	if err != nil {
		return "", nil, fmt.Errorf("node (Node.js) runs the local DynamoDB server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--createTableMs", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "listening") {
				close(listening)
				signalled = true
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-listening:
	case <-exited:
		return "", nil, errors.New("the local DynamoDB server (dynalite) exited at start")
	case <-timer.C:
		stop()
		return "", nil, errors.New("the local DynamoDB server (dynalite) did not start within 30s")
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	log.Info("started the local DynamoDB server (dynalite, in memory)", "endpoint", endpoint)
	return endpoint, stop, nil
}

// Dummy credentials for the local server; real ones are never read or passed on.
const (
	localAccessKey = "local"
	localSecretKey = "local"
)

// newDynamoClient returns a client for a local endpoint with dummy credentials.
func newDynamoClient(endpoint, region string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: localAccessKey, SecretAccessKey: localSecretKey, Source: "idemlocal"}, nil
		}),
	})
}

// createTables creates the template's tables (named prefix + logical id) if missing.
func createTables(ctx context.Context, db *dynamodb.Client, tables []samtemplate.Table, prefix string, log *slog.Logger) error {
	var noTTL []string // tables whose TTL the local server cannot enable
	for _, t := range tables {
		name := prefix + t.LogicalID
		in := &dynamodb.CreateTableInput{
			TableName:   aws.String(name),
			BillingMode: types.BillingModePayPerRequest,
		}
		for _, k := range t.Keys {
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.Name), KeyType: types.KeyType(k.KeyType)})
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
				AttributeName: aws.String(k.Name), AttributeType: types.ScalarAttributeType(k.AttributeType),
			})
		}
		_, err := db.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			log.Info("table exists", "table", name)
		case err != nil:
			return fmt.Errorf("create table %s: %w", name, err)
		default:
			log.Info("created table", "table", name)
		}
		waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second // a local server is quick
		})
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		if !t.TTLEnabled {
			continue
		}
		_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(t.TTLAttribute), Enabled: aws.Bool(true),
			},
		})
		var apiErr smithy.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException":
			noTTL = append(noTTL, name)
		case err != nil:
			log.Warn("could not enable TTL; expired records stay until overwritten", "table", name, "err", err)
		}
	}
	if len(noTTL) > 0 {
		// dynalite has no UpdateTimeToLive; the library treats an expired
		// record as absent whether or not DynamoDB has deleted it yet.
		log.Info("expected: the local DynamoDB server (dynalite) has no TTL, so expired records are not deleted; "+
			"the library ignores them anyway (on AWS, DynamoDB's TTL deletes them)", "tables", strings.Join(noTTL, ","))
	}
	return nil
}

// buildFunction compiles a function for this machine into dir/<LogicalId>/bootstrap.
func buildFunction(ctx context.Context, root, dir string, fn samtemplate.Function, stderr io.Writer) (string, error) {
	pkg := fn.HandlerPackage()
	if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
		return "", fmt.Errorf("%s: its package %s is missing: %w", fn.LogicalID, pkg, err)
	}
	out, err := filepath.Abs(filepath.Join(dir, fn.LogicalID, "bootstrap"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s (%s): %w", fn.LogicalID, pkg, err)
	}
	return out, nil
}

// prefixWriter prefixes each line written through it, for function logs.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
