package redisstore

import "github.com/redis/go-redis/v9"

// A record is one Redis string (layout 1, codec.go):
//
//	"1" status " " expiration " " lease " " owner " " validation " " format "\n" data
//
// so an acquire is one SET NX GET, a replay returns the string as it is, and
// no script builds a table or reads a clock. The scripts read only the
// header's first fields, with one anchored pattern. Records of the hash
// layout that came before (one field per attribute) are still read: a
// string command on such a key fails with WRONGTYPE, and only then does a
// script look at the hash (legacy below).
//
// Every script that writes does it with one SET. A server out of memory
// under noeviction refuses a script's first memory-growing write, so a full
// server refuses the whole operation — a *StoreError, the record untouched —
// rather than running part of it (TestOutOfMemory). Errors a script meets
// through redis.pcall (OOM, a read-only replica, ...) are returned as they are:
// only WRONGTYPE is a record question.

// header is the Lua pattern that reads a layout-1 record's status,
// expiration (s), lease end (ms, empty on a completed record), owner and
// validation. A string it does not match is not a record (corrupt, never
// taken over).
const header = `'^1([IC]) (%-?%d+) (%-?%d*) ([^ ]*) ([^ ]*) '`

// graceMS is how long an in-progress key outlives max(expiration, lease
// end): one hour, in milliseconds. It keeps a crashed run's record after its
// lease ended, so that a retry in that hour is reported as a lease takeover
// even when the record's TTL is shorter than its lease. A completed or
// released key does not keep it: Complete moves the key's time to live to the
// new expiration (subtracting the grace with the anchor), Release deletes it.
const graceMS = 3_600_000

const graceLua = `3600000`

// legacy is the prelude of the scripts that read records of the hash layout:
// the record at k as the array {status, expiration, in_progress_expiration,
// owner, validation, data, data_format} (false for a missing field), or
// {0, type} for a key that is neither a string nor a hash (foreign). It runs
// only after a string command met WRONGTYPE.
const legacy = `
local function legacy(k)
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'hash' then return {0, t} end
  return redis.call('HMGET', k, 'status', 'expiration', 'in_progress_expiration',
    'owner', 'validation', 'data', 'data_format')
end
local function wrongtype(e)
  return type(e) == 'table' and e.err and string.find(e.err, 'WRONGTYPE', 1, true) == 1
end
`

// acquireScript writes the record if the key is free at now, in one atomic
// step (§3.3), and otherwise returns the record holding it. Acquire sends
// its SET NX GET itself and judges the record it finds with this table in
// Go (judge, held equal to it by TestJudgeMatchesScript); it runs the script
// only over a record it found free, or a key that answered WRONGTYPE (the
// legacy layout). The script decides again: the record may have changed in
// between, and only a decision made in the same atomic step as the write
// may write.
//
//	KEYS[1]  the record key
//	ARGV[1]  now, epoch seconds        ARGV[2]  now, epoch milliseconds
//	ARGV[3]  the key's time to live in ms, relative to now
//	ARGV[4]  the record (layout 1)     ARGV[5]  its owner, escaped ("" none)
//
// Reply: 1 when written; {1, the replaced record} when written over an
// in-progress record that was free by its lease's end or its expiration (a
// lease takeover, which Acquire reports — not a repeated acquire by the
// lease's owner); the record (a string, or a legacy array) when the key is
// held; {0, type} for a foreign key. The key is free when it has no record,
// the record is expired (expiration <= now_s), or it is in progress and its
// lease has ended (lease <= now_ms) — or when it is in progress under the
// caller's own owner token: then this very write landed before and its
// answer was lost (the client resent it), and it is acquired without a write.
// A record that does not parse is never free: it is returned, and decoded as
// corrupt. A new key costs one SET NX GET; a held key the same (its value is
// the reply); a free one one SET more.
var acquireScript = redis.NewScript(legacy + `
local k = KEYS[1]
local v = redis.pcall('SET', k, ARGV[4], 'NX', 'GET', 'PX', ARGV[3])
if not v then return 1 end
local took = false
if type(v) == 'string' then
  local st, exp, lease, owner = string.match(v, ` + header + `)
  exp = tonumber(exp)
  if not exp then return v end
  if exp <= tonumber(ARGV[1]) then
    took = st == 'I'
  elseif st == 'I' then
    lease = tonumber(lease)
    if not lease then return v end
    if lease <= tonumber(ARGV[2]) then
      took = true
    elseif ARGV[5] ~= '' and owner == ARGV[5] then
      return 1
    else
      return v
    end
  else
    return v
  end
else
  if not wrongtype(v) then return v end
  v = legacy(k)
  if #v ~= 7 then return v end
  local exp = tonumber(v[2])
  if exp and exp <= tonumber(ARGV[1]) then
    took = v[1] == 'INPROGRESS'
  elseif exp and v[1] == 'INPROGRESS' then
    local lease = tonumber(v[3])
    if not (lease and lease <= tonumber(ARGV[2])) then return v end
    took = true
  else
    return v
  end
  v[6], v[7] = false, false
end
redis.call('SET', k, ARGV[4], 'PX', ARGV[3])
if took then return {1, v} end
return 1
`)

// completeScript turns the in-progress record held by the caller into a
// completed one (§3.6).
//
//	KEYS[1]  the record key
//	ARGV[1]  owner, escaped   ARGV[2] expiration (s)
//	ARGV[3]  the completed record (layout 1) with validation ARGV[4]
//
// The stored validation is kept: when it differs from ARGV[4] (a caller of
// the Store that completes with another fingerprint) the script writes
// ARGV[3] with the stored one spliced in. Reply: 1 when written; 2 when the
// record is already completed by this owner, byte for byte as this call
// would write it (this write landed before and its answer was lost); 0 when
// the record is missing, foreign, of the legacy layout, not in progress or
// held by another owner — nothing is changed then.
//
// The key's time to live moves from the lease to the new expiration without
// reading a clock: the in-progress key was set to live until
// anchor = max(expiration, lease end) + grace on the caller's clock, and PTTL
// says how long that still is, so the new expiration is
// PTTL + (expiration - anchor) from now. A key without a time to live keeps
// none. (The PTTL call costs about 1.3 µs of the script's 7.8 µs of server
// time. The client cannot pass the new time to live instead: Complete has no
// now of the caller's, and the wall clock — which the caller's clock need not
// be, in a test or a skewed deployment — could set a time to live that ends
// a completed record before its expiration, and so run it again; nor could
// it tell a key without a time to live.)
var completeScript = redis.NewScript(legacy + `
local k = KEYS[1]
local v = redis.pcall('GET', k)
if type(v) ~= 'string' then
  if v and not wrongtype(v) then return v end
  return 0
end
local st, exp, lease, owner, val = string.match(v, ` + header + `)
if not st or ARGV[1] == '' or owner ~= ARGV[1] then return 0 end
local rec = ARGV[3]
if val ~= ARGV[4] then
  local pre = '1C ' .. ARGV[2] .. '  ' .. ARGV[1] .. ' '
  rec = pre .. val .. string.sub(rec, #pre + #ARGV[4] + 1)
end
if st == 'C' then
  if v == rec then return 2 end
  return 0
end
local anchor = math.max(tonumber(exp) * 1000, tonumber(lease) or 0) + ` + graceLua + `
local pttl = redis.call('PTTL', k)
if pttl < 0 then
  redis.call('SET', k, rec)
  return 1
end
local ttl = tonumber(ARGV[2]) * 1000 - anchor + pttl
if ttl < 1 then ttl = 1 end
redis.call('SET', k, rec, 'PX', string.format('%.0f', ttl))
return 1
`)

// releaseScript deletes the in-progress record held by the caller
// (§3.7).
//
//	KEYS[1]  the record key    ARGV[1]  owner, escaped
//
// Reply: 1 when deleted, 0 when the record is missing, foreign, of the legacy
// layout, not in progress or held by another owner (nothing is changed then).
var releaseScript = redis.NewScript(legacy + `
local k = KEYS[1]
local v = redis.pcall('GET', k)
if type(v) ~= 'string' then
  if v and not wrongtype(v) then return v end
  return 0
end
local st, exp, lease, owner = string.match(v, ` + header + `)
if st ~= 'I' or ARGV[1] == '' or owner ~= ARGV[1] then return 0 end
redis.call('DEL', k)
return 1
`)

// getScript reads the record: the record (a string, or a legacy array), nil
// (no key), or {0, type} for a foreign key. Get sends a plain GET and runs
// it only when that answered WRONGTYPE, or in its place for a cluster client
// that may send a GET to a replica (the script goes to the primary).
var getScript = redis.NewScript(legacy + `
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then
  if not wrongtype(v) then return v end
  return legacy(KEYS[1])
end
return v
`)
