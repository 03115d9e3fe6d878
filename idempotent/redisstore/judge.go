package redisstore

import (
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// verdict is what Acquire makes of the record its SET NX GET found at a key
// (held, mine or free), by the decision table of acquireScript.
type verdict int

const (
	// held: the record stands — completed and unexpired, in progress under
	// a live lease of another owner, or not a record at all (corrupt, never
	// taken over). Acquire returns it as found.
	held verdict = iota
	// mine: in progress under a live lease with the caller's own owner
	// token — this very acquire's write, resent after its answer was lost.
	// Acquired, without a write.
	mine
	// free: expired, or in progress with an ended lease. Only the acquire
	// script writes over it: it decides again, atomically, and reports a
	// takeover.
	free
)

// judge applies acquireScript's decision table to the layout-1 string v at
// the caller's now (epoch seconds and milliseconds) for the caller's escaped
// owner token. It reads only what the script reads — the header's first
// fields, as the Lua pattern header matches them, and the numbers as Lua's
// tonumber reads them (a double; strconv.ParseFloat rounds as strtod) — so
// the two cannot decide differently; TestJudgeMatchesScript feeds both the
// same records to hold them to that. A string the pattern does not match
// is held (it is decoded as corrupt).
func judge(v string, nowS, nowMS int64, owner string) verdict {
	st, exp, lease, recOwner, ok := matchHeader(v)
	if !ok {
		return held
	}
	e, ok := luaNumber(exp)
	if !ok {
		return held
	}
	if e <= float64(nowS) {
		return free
	}
	if st != statusIn {
		return held
	}
	l, ok := luaNumber(lease)
	switch {
	case !ok:
		return held
	case l <= float64(nowMS):
		return free
	case owner != "" && recOwner == owner:
		return mine
	}
	return held
}

// matchHeader is the Lua pattern header, '^1([IC]) (%-?%d+) (%-?%d*)
// ([^ ]*) ([^ ]*) ', in Go: the status letter, expiration, lease and owner
// as the pattern captures them (the validation it matches but Acquire does
// not read), or ok false when v does not match.
func matchHeader(v string) (st byte, exp, lease, owner string, ok bool) {
	if len(v) < 3 || v[0] != layout1 || (v[1] != statusIn && v[1] != statusDone) || v[2] != ' ' {
		return 0, "", "", "", false
	}
	st, rest := v[1], v[3:]
	if exp, rest, ok = cutInteger(rest, 1); !ok {
		return 0, "", "", "", false
	}
	if lease, rest, ok = cutInteger(rest, 0); !ok {
		return 0, "", "", "", false
	}
	// [^ ]* then a space: everything up to the next space (a newline too,
	// as in Lua).
	if owner, rest, ok = strings.Cut(rest, " "); !ok {
		return 0, "", "", "", false
	}
	if _, _, ok = strings.Cut(rest, " "); !ok {
		return 0, "", "", "", false
	}
	return st, exp, lease, owner, true
}

// cutInteger matches %-?%d followed by a space at the start of s, with at
// least minDigits digits (1: %d+, 0: %d*): the match and the rest after the
// space.
func cutInteger(s string, minDigits int) (match, rest string, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	j := i
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	if j-i < minDigits || j >= len(s) || s[j] != ' ' {
		return "", "", false
	}
	return s[:j], s[j+1:], true
}

// luaNumber is Lua 5.1's tonumber on a string matched by %-?%d*: a double,
// or false for "" and "-". Digits beyond a double's range give ±Inf, as
// strtod does.
func luaNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// wrongType tells a server's WRONGTYPE error: the key holds a value of
// another type than the command's (a hash of the legacy layout, or a
// foreign key), which only the scripts read.
func wrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

func (v verdict) String() string {
	switch v {
	case held:
		return "held"
	case mine:
		return "mine"
	case free:
		return "free"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}
