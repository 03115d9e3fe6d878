// Package testredis gives the redisstore tests a real, local Redis server
// (Debian's redis-server, installed by redis/ctl.sh or make redis-install)
// and clients for it. No mock or in-process fake stands in for it.
//
// If IDEMLAMBDA_TEST_REDIS_URL is set (redis://host:port/db), tests use that
// server. Otherwise the first call to Addr or Client in a test binary starts
// one redis-server process on a free 127.0.0.1 port, without persistence
// (save and appendonly off) and without a unix socket, and waits until it
// answers PING; Main stops it when the tests end, and on Linux the process is
// also killed if the test binary dies. Every test gets its own key prefix
// from Prefix, so tests never share records.
//
// Counting: CountingClient returns a client whose hook counts the commands
// it sends (a pipeline counts once, as the one round trip it is), so tests
// assert the contract's floor of round trips. The hook sits above go-redis'
// own retries: a command the client resends after a lost answer counts once.
//
// Usage:
//
//	func TestMain(m *testing.M) { testredis.Main(m) }
//
//	func TestX(t *testing.T) {
//		client, calls := testredis.CountingClient(t)
//		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
//		...
//		if got := calls.Total(); got != 1 { ... }
//	}
package testredis
