package redisstore

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestReviewJudgeWideAlphabet holds judge to acquireScript on numbers and
// bytes TestJudgeMatchesScript's alphabet leaves out: a leading '+', spaces
// and tabs, hex, inf and nan, exponents, decimal points, NUL and high bytes,
// digits beyond a double, negative zero, and random headers over that
// alphabet.
func TestReviewJudgeWideAlphabet(t *testing.T) {
	const nowS, nowMS = 1_800_000_000, 1_800_000_000_250
	nums := []string{"+1800000001", " 1800000001", "1800000001 ", "0x6B49D201", "0X6B49D201", "inf", "-inf", "nan", "1.8e9",
		"18000000010", "1800000001.0", "-0", "-00", "0", "+0", "\x001800000001", "1800000001\x00", "\t1800000001",
		"1800000000249", "1800000000251", "+1800000000251", "0x1a3185c5bfb", "1e400", "-1e400",
		"179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537197937042", "-" + "9999999999999999999999999999999999999999999999999999999999999999",
		"9007199254740993", "1800000000250", "18000000002500", "٣", "１"}
	var records []string
	for _, st := range []string{"1I", "1C"} {
		for _, exp := range nums {
			for _, lease := range append(nums, "") {
				records = append(records, st+" "+exp+" "+lease+" me fp -\n", st+" "+exp+" "+lease+" me fp \nxyz")
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 19))
	alphabet := []byte(" -+.\t\r\n\x00\xff0123456789eExXinfaICme")
	for range 4000 {
		n := 3 + rng.IntN(40)
		b := []byte{'1', "IC"[rng.IntN(2)], ' '}
		for range n {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
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
		v     string
		reply *redis.Cmd
		after *redis.StringCmd
	}
	counts := map[verdict]int{}
	for start := 0; start < len(records); start += 500 {
		var runs []run
		pipe := client.Pipeline()
		for i, v := range records[start:min(start+500, len(records))] {
			key := prefix + "{" + strconv.Itoa(start+i) + "}"
			pipe.Set(ctx, key, v, 0)
			runs = append(runs, run{v: v,
				reply: acquireScript.EvalSha(ctx, pipe, []string{key}, nowS, nowMS, 3_600_000, written, "me"),
				after: pipe.Get(ctx, key)})
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			reply, err := r.reply.Result()
			if err != nil {
				t.Fatalf("script on %q: %v", r.v, err)
			}
			var lua verdict
			switch after := r.after.Val(); {
			case reply == int64(1) && after == r.v:
				lua = mine
			case after == written:
				lua = free
			case after == r.v:
				lua = held
			default:
				t.Fatalf("script on %q: reply %#v, the key holds %q", r.v, reply, after)
			}
			if got := judge(r.v, nowS, nowMS, "me"); got != lua {
				t.Errorf("record %q: judge says %v, the script %v", r.v, got, lua)
			}
			counts[lua]++
		}
	}
	t.Logf("%d records: %v", len(records), counts)
}
