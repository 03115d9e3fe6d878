package redisstore_test

import (
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// addr and examplePrefix serve the examples, which have no testing.T: the
// local server, and a key prefix of this test binary's own.
var (
	addr          string
	examplePrefix = fmt.Sprintf("example:%d:", os.Getpid())
)

func TestMain(m *testing.M) {
	o, err := testredis.Start()
	if err != nil {
		log.Fatalf("testredis: %v", err)
	}
	addr = o.Addr
	testredis.Main(m)
}
