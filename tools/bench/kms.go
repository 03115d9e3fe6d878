package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
)

// The encrypted side (-impls idemlambda-kms, in the default set) is
// idemlambda with idemkms wrapping dynamostore, against the local-kms that
// kms/ctl.sh runs (tools/bench/run.sh starts the bench under it) with the
// fixed test key of kms/seed.yaml. It is a warm container: one idemkms.Store
// for the whole run, which completed one record before the first round, so
// its data key is generated and cached; the measured loop then makes no KMS
// call until the data key's MaxAge (5 minutes) or MaxUses (10,000 records)
// runs out, and then one GenerateDataKey. Each row reports the KMS calls of
// its measured rounds (kms_calls; TestKMSSideMakesNoKMSCallWhenWarm asserts
// the count).

// benchKMSKey is the seeded local-kms key the encrypted side uses.
const benchKMSKey = "alias/idemlambda-test"

// kmsCounter counts the KMS calls of the encrypted side.
type kmsCounter struct {
	idemkms.KMSAPI
	n atomic.Int64
}

func (c *kmsCounter) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	c.n.Add(1)
	return c.KMSAPI.GenerateDataKey(ctx, in, optFns...)
}

func (c *kmsCounter) Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.n.Add(1)
	return c.KMSAPI.Decrypt(ctx, in, optFns...)
}

// kmsCounted is a side whose KMS calls runRow reports.
type kmsCounted interface{ kmsCalls() *atomic.Int64 }

func (o *ours) kmsCalls() *atomic.Int64 {
	if o.kms == nil {
		return nil
	}
	return &o.kms.n
}

// localKMSClient is a client of the local-kms kms/ctl.sh runs.
func localKMSClient() (*kms.Client, error) {
	ep := os.Getenv("AWS_ENDPOINT_URL_KMS")
	if ep == "" {
		return nil, errors.New("idemlambda-kms: AWS_ENDPOINT_URL_KMS is not set (run the bench through kms/ctl.sh run --, as tools/bench/run.sh does)")
	}
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(ep),
		Credentials:  credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	}), nil
}

// newOursKMS returns the encrypted side on table, warmed by one completed
// record (warmID).
func newOursKMS(ctx context.Context, client *dynamodb.Client, table, warmID string) (*ours, error) {
	kc, err := localKMSClient()
	if err != nil {
		return nil, err
	}
	counter := &kmsCounter{KMSAPI: kc}
	store, err := idemkms.Wrap(dynamostore.New(client, table), counter, benchKMSKey)
	if err != nil {
		return nil, err
	}
	o := &ours{client: client, table: table, encrypted: store, kms: counter}
	if _, err := o.handler(spec{payload: []byte(`"warm"`)})(ctx, event{ID: warmID}); err != nil {
		return nil, err
	}
	return o, nil
}
