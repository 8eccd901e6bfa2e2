"""The Redis backend's scripts: `bucket.evaluate` and `bucket.settle_tokens` in Lua.

Each runs atomically in Redis, so replicas never interleave inside one admission, and a
refused request writes nothing. Times come from the Redis clock (one clock for all
replicas) unless the caller passes one (tests do). Numbers go back as '%.17g' text
because Redis would truncate a Lua number in a reply to an integer.

KEYS[1]: hash {r = requests level, k = tokens level, t = when both were stored}
KEYS[2]: sorted set of in-flight request ids scored by lease expiry (RENEW: KEYS[1])
"""

from __future__ import annotations

_COMMON = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local EPS, WINDOW = 1e-9, 60
local function refill(level, limit, elapsed)
  if not level then return limit end
  if elapsed <= 0 then return math.min(level, limit) end
  return math.min(limit, level + elapsed * limit / WINDOW)
end
local function reset(level, limit)
  return math.max(0, (limit - level) * WINDOW / limit)
end
local function num(x) return string.format('%.17g', x) end
local function store(rpm, tpm, req, tok)
  local ttl, fields, stale = 0, {'t', num(now)}, {}
  if rpm then
    fields[#fields + 1], fields[#fields + 2] = 'r', num(req)
    ttl = reset(req, rpm)
  else
    stale[#stale + 1] = 'r'
  end
  if tpm then
    fields[#fields + 1], fields[#fields + 2] = 'k', num(tok)
    ttl = math.max(ttl, reset(tok, tpm))
  else
    stale[#stale + 1] = 'k'
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  -- A field for a limit the key no longer has would later be read with a newer clock.
  if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
  -- Once full, the state equals a fresh key's and may vanish.
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
end
"""

# ARGV: now ('' = Redis clock), rpm, tpm, max_parallel ('' = no such limit),
#       cost_tokens, request_id, lease_s
# Reply: "admitted(0|1) refused(kind|-) retry_after_s requests tokens in_flight", one string
# because parsing one bulk reply costs the client less than a six-element array.
ADMIT = (
    _COMMON
    + """
local rpm, tpm, par = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cost, rid, lease = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local function wait(level, need, limit)
  if need > limit then return math.huge end
  local short = need - level
  if short <= EPS then return 0 end
  return short * WINDOW / limit
end

local st = redis.call('HMGET', KEYS[1], 'r', 'k', 't')
local elapsed = now - (tonumber(st[3]) or now)
local req, tok, refused, delay, inflight = 0, 0, '-', 0, 0
if rpm then
  req = refill(tonumber(st[1]), rpm, elapsed)
  local w = wait(req, 1, rpm)
  if w > delay then refused, delay = 'requests', w end
end
if tpm then
  tok = refill(tonumber(st[2]), tpm, elapsed)
  local w = wait(tok, cost, tpm)
  if w > delay then refused, delay = 'tokens', w end
end
if par then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[2])
  if inflight >= par and 1 > delay then refused, delay = 'parallel', 1 end
end
if refused ~= '-' then
  return table.concat({'0', refused, num(delay), num(req), num(tok), inflight}, ' ')
end
if rpm then req = req - 1 end
if tpm then tok = tok - cost end
if rpm or tpm then store(rpm, tpm, req, tok) end
if par then
  redis.call('ZADD', KEYS[2], num(now + lease), rid)
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease * 1000) + 1000)
  inflight = inflight + 1
end
return table.concat({'1', '-', '0', num(req), num(tok), inflight}, ' ')
"""
)

# ARGV: now ('' = Redis clock), rpm, tpm ('' = no such limit), delta_tokens (actual -
#       estimate), request_id ('' = no lease to release)
# Reply: 1 if a lease was released, else 0
SETTLE = (
    _COMMON
    + """
local rpm, tpm, delta = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local released = 0
if ARGV[5] ~= '' then released = redis.call('ZREM', KEYS[2], ARGV[5]) end
if not tpm or delta == 0 then return released end
local st = redis.call('HMGET', KEYS[1], 'r', 'k', 't')
local elapsed = now - (tonumber(st[3]) or now)
local req = 0
if rpm then req = refill(tonumber(st[1]), rpm, elapsed) end
-- A refund never overfills the bucket; an overrun may leave it in debt.
local tok = math.min(tpm, refill(tonumber(st[2]), tpm, elapsed) - delta)
store(rpm, tpm, req, tok)
return released
"""
)

# KEYS[1]: the key's in-flight sorted set
# ARGV: now ('' = Redis clock), lease_s, request ids (those this replica still runs)
# Reply: how many leases were extended. XX: a lease already released (or expired) is
# never brought back, so a renewal that crosses a release cannot leave a phantom slot.
RENEW = (
    _COMMON
    + """
local lease = tonumber(ARGV[2])
local expiry = num(now + lease)
local renewed = 0
for i = 3, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', expiry, ARGV[i])
end
if renewed > 0 then
  local ttl = math.ceil(lease * 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return renewed
"""
)
