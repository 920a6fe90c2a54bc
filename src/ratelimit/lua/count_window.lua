-- Check and count one request in a fixed window of ARGV[1] milliseconds that admits ARGV[2]
-- requests, on Redis's clock.
--
-- KEYS[1]: the counter, a hash {w = window start (Unix ms), c = requests admitted}; it expires
--   when its window ends. A rejected request is not counted.
-- Returns {requests admitted before this one, server time (Unix ms)}.

if redis.replicate_commands then redis.replicate_commands() end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local length = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local start = now - now % length

local stored = redis.call('HMGET', KEYS[1], 'w', 'c')
local used = 0
if tonumber(stored[1]) == start then
  used = tonumber(stored[2]) or 0
end
if used < limit then
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', start), 'c', used + 1)
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', start + length))
end

return {used, now}
