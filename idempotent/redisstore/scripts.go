package redisstore

import "github.com/redis/go-redis/v9"

// The record's hash fields: the contract's attribute names (§2),
// so a record reads the same in Redis as in DynamoDB.
const (
	fieldStatus     = "status"
	fieldExpiration = "expiration"             // epoch seconds
	fieldLease      = "in_progress_expiration" // epoch milliseconds
	fieldOwner      = "owner"
	fieldValidation = "validation"
	fieldData       = "data"
	fieldFormat     = "data_format" // absent: plain bytes; "zstd": a zstd frame
)

// load is the prelude of every script: the record at KEYS[1] as the array
// {status, expiration, in_progress_expiration, owner, validation, data,
// data_format} (false for a missing field), nil when there is no key, or the
// name of the key's type when it is not a hash (a foreign key, reported as
// corrupt). The reply of a script that returns this array is decoded by
// decodeFields, in this order.
const load = `
local function load(k)
  local t = redis.call('TYPE', k)['ok']
  if t == 'none' then return nil end
  if t ~= 'hash' then return t end
  return redis.call('HMGET', k, 'status', 'expiration', 'in_progress_expiration',
    'owner', 'validation', 'data', 'data_format')
end
`

// acquireScript writes the record if the key is free at now, in one atomic
// step (§3.3), and otherwise returns the record holding it.
//
//	KEYS[1]  the record key
//	ARGV[1]  now, epoch seconds        ARGV[2]  now, epoch milliseconds
//	ARGV[3]  key time to live in ms, relative to now: max(expiration, lease end) - now
//	ARGV[4]  status  ARGV[5] expiration (s)  ARGV[6] lease end (ms)
//	ARGV[7]  owner   ARGV[8] validation (or "")
//	ARGV[9]  "1" when ARGV[10] holds data (format ARGV[11], or "")
//
// Reply: 1 when written; {1, the replaced record array, without its data}
// when written over an in-progress record that was free by its lease's end or
// its expiration (a lease takeover, which Acquire reports — not a repeated
// acquire by the lease's owner); the record array when the key is held; a
// type name for a foreign key. Every script writes with HSET before it removes
// fields: a server out of memory under noeviction refuses a script's first
// memory-growing write (and lets a script that already wrote finish), so with
// HSET first a full server refuses the whole operation — a *StoreError, the
// record untouched — rather than running it. TestOutOfMemory checks it. The key is free when it has no record, the record is
// expired (expiration <= now_s), or it is in progress and its lease has ended
// (lease <= now_ms) — or when it is in progress under the caller's own owner
// token: then this very write landed before and its answer was lost (the
// client retried it), and it is written again unchanged. A record with a
// missing or non-numeric time is never free: it is returned, and decoded as
// corrupt.
var acquireScript = redis.NewScript(load + `
local r = load(KEYS[1])
if type(r) == 'string' then return r end
local took = false
if r then
  local exp = tonumber(r[2])
  local free = false
  if exp and exp <= tonumber(ARGV[1]) then
    free = true
    took = r[1] == 'INPROGRESS'
  elseif exp and r[1] == 'INPROGRESS' then
    local lease = tonumber(r[3])
    if lease and lease <= tonumber(ARGV[2]) then
      free, took = true, true
    elseif lease and ARGV[7] ~= '' and r[4] == ARGV[7] then
      free = true
    end
  end
  if not free then return r end
end
local f, gone = {'status', ARGV[4], 'expiration', ARGV[5], 'in_progress_expiration', ARGV[6]}, {}
local function put(name, v, set)
  if set then f[#f+1] = name; f[#f+1] = v else gone[#gone+1] = name end
end
put('owner', ARGV[7], ARGV[7] ~= '')
put('validation', ARGV[8], ARGV[8] ~= '')
put('data', ARGV[10], ARGV[9] == '1')
put('data_format', ARGV[11], ARGV[9] == '1' and ARGV[11] ~= '')
redis.call('HSET', KEYS[1], unpack(f))
if r and #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if took then
  r[6], r[7] = false, false
  return {1, r}
end
return 1
`)

// completeScript turns the in-progress record held by the caller into a
// completed one (§3.6).
//
//	KEYS[1]  the record key
//	ARGV[1]  owner  ARGV[2] expiration (s)  ARGV[3] data  ARGV[4] format (or "")
//
// Reply: 1 when written; 2 when the record is already completed by this owner
// with this very expiration and data (this write landed before and its answer
// was lost); 0 when the record is missing, foreign, not in progress or held by
// another owner — nothing is changed then.
//
// The key's time to live moves from the lease to the new expiration without
// reading a clock: the in-progress key was set to live until
// anchor = max(expiration, lease end) on the caller's clock, and PTTL says how
// long that still is, so the new expiration is PTTL + (expiration - anchor)
// from now. A key without a time to live keeps none.
var completeScript = redis.NewScript(load + `
local r = load(KEYS[1])
if type(r) ~= 'table' or ARGV[1] == '' or r[4] ~= ARGV[1] then return 0 end
if r[1] == 'COMPLETED' then
  if r[2] == ARGV[2] and r[6] == ARGV[3] and (r[7] or '') == ARGV[4] then return 2 end
  return 0
end
if r[1] ~= 'INPROGRESS' then return 0 end
local anchor = math.max((tonumber(r[2]) or 0) * 1000, tonumber(r[3]) or 0)
local pttl = redis.call('PTTL', KEYS[1])
local f = {'status', 'COMPLETED', 'expiration', ARGV[2], 'data', ARGV[3]}
if ARGV[4] ~= '' then f[#f+1] = 'data_format'; f[#f+1] = ARGV[4] end
redis.call('HSET', KEYS[1], unpack(f))
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], 'in_progress_expiration', 'data_format')
else
  redis.call('HDEL', KEYS[1], 'in_progress_expiration')
end
if pttl >= 0 then
  local ttl = tonumber(ARGV[2]) * 1000 - anchor + pttl
  if ttl < 1 then ttl = 1 end
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))
end
return 1
`)

// releaseScript deletes the in-progress record held by the caller
// (§3.7).
//
//	KEYS[1]  the record key    ARGV[1]  owner
//
// Reply: 1 when deleted, 0 when the record is missing, foreign, not in
// progress or held by another owner (nothing is changed then).
var releaseScript = redis.NewScript(load + `
local r = load(KEYS[1])
if type(r) ~= 'table' or ARGV[1] == '' or r[1] ~= 'INPROGRESS' or r[4] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// getScript reads the record: the record array, nil (no key), or the type
// name of a foreign key. It is a script rather than HMGET so that Get needs
// the same narrow client interface and tells a foreign key from a missing
// one in the same round trip.
var getScript = redis.NewScript(load + `
local r = load(KEYS[1])
if r == nil then return false end
return r
`)
