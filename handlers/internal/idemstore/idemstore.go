// Package idemstore picks the example functions' idempotency store from
// their environment: the Redis/Valkey store when REDIS_URL is set, else the
// DynamoDB table IDEMPOTENCY_TABLE.
//
//	REDIS_URL      redis://[user:password@]host:port[/db], or rediss:// for TLS
//	               (ElastiCache and MemoryDB with in-transit encryption)
//	REDIS_CLUSTER  "true" for a cluster-mode endpoint (MemoryDB, ElastiCache
//	               with cluster mode enabled): a cluster client follows MOVED
package idemstore

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
)

// The variables that select and configure the Redis store.
const (
	EnvRedisURL     = "REDIS_URL"
	EnvRedisCluster = "REDIS_CLUSTER"
)

// New returns the store the environment asks for: a redisstore on REDIS_URL
// when it is set (table is then unused), else a dynamostore on table through
// client. A REDIS_URL that does not parse, or neither setting, is an error;
// nothing connects yet.
func New(getenv func(string) string, client dynamostore.API, table string) (idempotent.Store, error) {
	if u := getenv(EnvRedisURL); u != "" {
		cluster := false
		if v := getenv(EnvRedisCluster); v != "" {
			var err error
			if cluster, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("%s %q is not true or false", EnvRedisCluster, v)
			}
		}
		// The URL may carry a password: errors name the variable, not the value.
		if cluster {
			opt, err := redis.ParseClusterURL(u)
			if err != nil {
				return nil, fmt.Errorf("%s does not parse as a redis:// or rediss:// URL", EnvRedisURL)
			}
			return redisstore.New(redis.NewClusterClient(opt)), nil
		}
		opt, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("%s does not parse as a redis:// or rediss:// URL", EnvRedisURL)
		}
		return redisstore.New(redis.NewClient(opt)), nil
	}
	if table == "" {
		return nil, errors.New("neither " + EnvRedisURL + " nor an idempotency table is set")
	}
	return dynamostore.New(client, table), nil
}
