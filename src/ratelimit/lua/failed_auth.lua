-- Count one failed authentication from a client address in the current calendar minute, on
-- Redis's clock.
--
-- KEYS[1]: the address's counter, a hash {w = minute start (Unix ms), c = failures}; it
--   expires when its minute ends.
-- Returns {failures this minute (this one included), server time (Unix ms)}.

if redis.replicate_commands then redis.replicate_commands() end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local start = now - now % 60000

local stored = redis.call('HMGET', KEYS[1], 'w', 'c')
local count = 1
if tonumber(stored[1]) == start then
  count = (tonumber(stored[2]) or 0) + 1
end
redis.call('HSET', KEYS[1], 'w', string.format('%.0f', start), 'c', count)
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', start + 60000))

return {count, now}
