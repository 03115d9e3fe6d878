package redisstore_test

import (
	"testing"

	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

func TestMain(m *testing.M) { testredis.Main(m) }
