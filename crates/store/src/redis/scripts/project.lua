-- Applies a metrics delta to one version's projection, atomically and exactly once.
--
-- KEYS: total_orders, total_revenue, drink_counts, drink_revenue, store_counts, store_revenue,
--       hourly_counts, hourly_revenue, recent_orders, fence, updated_at, newest_accepted_at
-- ARGV: mode ('apply' | 'replace' | 'reset'), source, prev, next, now_ms, channel, version, delta_json,
--       n_fences, then n_fences pairs (source, value), then recent pairs (score, member).
--
-- 'apply' follows the fence rule of coffee_core::Ledger: already applied when the source's
-- fence >= next; applied (and the fence moved to next) when fence == prev; otherwise a gap.
-- 'replace' overwrites the metrics with absolute values and sets the given fences, for the v1
-- aggregator's full recompute and `reconcile --fix`.
-- 'replace' refuses ({-2, fence}) when a writer has moved past the given fence since the caller
-- took its snapshot: the caller retries with a newer one rather than erase that writer's delta.
-- 'reset' is 'replace' without that check, for `reconcile --fix --force` when Redis is ahead of
-- PostgreSQL (a reset database) and every writer is stopped.
-- Returns {1, fence} applied, {0, fence} duplicate, {-1, fence} gap.
local mode, source = ARGV[1], ARGV[2]
local prev, nxt = tonumber(ARGV[3]), tonumber(ARGV[4])

if mode == 'apply' then
  local fence = tonumber(redis.call('HGET', KEYS[10], source) or '0')
  if fence >= nxt then return {0, fence} end
  if fence ~= prev then return {-1, fence} end
else
  if mode == 'replace' then
    local n, j = tonumber(ARGV[9]), 10
    for _ = 1, n do
      local current = tonumber(redis.call('HGET', KEYS[10], ARGV[j]) or '0')
      if current > tonumber(ARGV[j + 1]) then return {-2, current} end
      j = j + 2
    end
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[12])
end

local function int(x) return string.format('%d', x) end
local d = cjson.decode(ARGV[8])
if d.t[1] ~= 0 or mode ~= 'apply' then
  redis.call('INCRBY', KEYS[1], int(d.t[1]))
  redis.call('INCRBY', KEYS[2], int(d.t[2]))
end
local maps = { {d.d, 3, 4}, {d.s, 5, 6}, {d.h, 7, 8} }
for _, m in ipairs(maps) do
  for name, v in pairs(m[1]) do
    redis.call('HINCRBY', KEYS[m[2]], name, int(v[1]))
    redis.call('HINCRBY', KEYS[m[3]], name, int(v[2]))
  end
end

local n_fences = tonumber(ARGV[9])
local i = 10
for _ = 1, n_fences do
  redis.call('HSET', KEYS[10], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('ZADD', KEYS[9], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('ZREMRANGEBYRANK', KEYS[9], 0, -(d.k + 1))

if mode == 'apply' then redis.call('HSET', KEYS[10], source, ARGV[4]) end
redis.call('SET', KEYS[11], ARGV[5])
if d.n > tonumber(redis.call('GET', KEYS[12]) or '0') then redis.call('SET', KEYS[12], int(d.n)) end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {1, nxt}
