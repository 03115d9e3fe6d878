package redisstore

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestJudgeMatchesScript holds the two copies of the acquire decision table
// to each other: judge (Go, which Acquire applies to the reply of its plain
// SET NX GET) and acquireScript (Lua, which decides atomically before it
// writes over a free record). Each record — valid ones at every boundary of
// now, and damaged ones: wrong version or status, numbers with signs,
// leading zeros, too many digits or none, missing fields, escapes, a
// newline inside a field, and seeded random mutations — is stored at a key
// of its own on the real server, the script runs on it, and what the script
// did (returned the record: held; acquired without a write: mine; wrote:
// free) must be what judge says.
func TestJudgeMatchesScript(t *testing.T) {
	const nowS, nowMS = 1_800_000_000, 1_800_000_000_250
	var records []string
	for _, st := range []string{"1I", "1C", "1X", "2I", "I", "1i"} {
		for _, exp := range []string{"1799999999", "1800000000", "1800000001", "01800000001", "-5", "-0", "", "-", "99999999999999999999999999", "-99999999999999999999999999", "18e8"} {
			for _, lease := range []string{"", "-", "1800000000249", "1800000000250", "1800000000251", "001800000000251", "-1", "1.8e12", "999999999999999999999999999"} {
				for _, owner := range []string{"me", "other", "", "m%20e", "m\ne"} {
					for _, tail := range []string{" fp -\n", "  zstd\nxyz", " fp\n", " fp", "", "\tfp -\n"} {
						records = append(records, st+" "+exp+" "+lease+" "+owner+tail)
					}
				}
			}
		}
	}
	// Seeded mutations of valid records.
	rng := rand.New(rand.NewPCG(19, 5))
	alphabet := []byte(" -\n0123456789ICme%x")
	for range 3000 {
		b := []byte(records[rng.IntN(len(records))])
		for range 1 + rng.IntN(3) {
			if len(b) == 0 {
				break
			}
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[i] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			default:
				b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
			}
		}
		records = append(records, string(b))
	}
	client := testredis.Client(t)
	ctx := t.Context()
	prefix := testredis.Prefix(t)
	if err := acquireScript.Load(ctx, client).Err(); err != nil {
		t.Fatal(err)
	}
	const written = "1I 1800003600 1800000030250 caller-wrote fp -\n"
	type run struct {
		v, owner string
		reply    *redis.Cmd
		after    *redis.StringCmd
	}
	verdicts := map[verdict]int{}
	for start := 0; start < len(records); start += 500 {
		var runs []run
		pipe := client.Pipeline()
		for i, v := range records[start:min(start+500, len(records))] {
			for _, owner := range []string{"me", "m%20e", "m\ne", ""} {
				key := prefix + "{" + strconv.Itoa(start+i) + "/" + owner + "}"
				pipe.Set(ctx, key, v, 0)
				r := run{v: v, owner: owner}
				r.reply = acquireScript.EvalSha(ctx, pipe, []string{key}, nowS, nowMS, 3_600_000, written, owner)
				r.after = pipe.Get(ctx, key)
				runs = append(runs, r)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			reply, err := r.reply.Result()
			if err != nil {
				t.Fatalf("script on %q: %v", r.v, err)
			}
			after := r.after.Val()
			var lua verdict
			switch {
			case reply == int64(1) && after == r.v:
				lua = mine
			case after == written:
				lua = free
			case after == r.v:
				if _, ok := reply.(string); !ok {
					t.Fatalf("script on %q for %q: reply %#v, not the record", r.v, r.owner, reply)
				}
				lua = held
			default:
				t.Fatalf("script on %q: reply %#v, the key holds %q", r.v, reply, after)
			}
			if got := judge(r.v, nowS, nowMS, r.owner); got != lua {
				t.Errorf("record %q, owner %q: judge says %v, the script %v", r.v, r.owner, got, lua)
			}
			verdicts[lua]++
		}
	}
	t.Logf("%d records × 4 owners: %v", len(records), verdicts)
	for _, v := range []verdict{held, mine, free} {
		if verdicts[v] < 50 {
			t.Fatalf("only %d cases judged %v: the table is not covered", verdicts[v], v)
		}
	}
}
