package chaos_test

import (
	"os"
	"testing"

	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopRedis()
	testdynamo.Stop()
	os.Exit(code)
}
