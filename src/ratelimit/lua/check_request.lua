-- Check and count one request against the key's minute window and the user's day window,
-- atomically, on Redis's clock so every replica agrees on the window whatever its own clock.
--
-- KEYS[1]: the key's minute counter; KEYS[2]: the user's day counter.
--   Each is a hash {w = window start (Unix ms), c = requests admitted in that window}; a hash
--   left from an earlier window counts as 0, and it expires when its window ends.
-- ARGV[1]: requests per minute, ARGV[2]: requests per day (0 = window off, not touched).
-- Returns {admitted (1 or 0), server time (Unix ms), minute count before, day count before}.

-- Needed before Redis 5 to write after reading TIME; a no-op afterwards.
if redis.replicate_commands then redis.replicate_commands() end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local windows = {
  {key = KEYS[1], limit = tonumber(ARGV[1]), length = 60000, used = 0},
  {key = KEYS[2], limit = tonumber(ARGV[2]), length = 86400000, used = 0},
}

local admitted = 1
for _, w in ipairs(windows) do
  if w.limit > 0 then
    w.start = now - now % w.length
    local stored = redis.call('HMGET', w.key, 'w', 'c')
    if tonumber(stored[1]) == w.start then
      w.used = tonumber(stored[2]) or 0
    end
    if w.used >= w.limit then
      admitted = 0
    end
  end
end

-- A rejected request is not counted in either window.
if admitted == 1 then
  for _, w in ipairs(windows) do
    if w.limit > 0 then
      -- '%.0f' keeps millisecond timestamps exact (plain number formatting may use exponents).
      redis.call('HSET', w.key, 'w', string.format('%.0f', w.start), 'c', w.used + 1)
      redis.call('PEXPIREAT', w.key, string.format('%.0f', w.start + w.length))
    end
  end
end

return {admitted, now, windows[1].used, windows[2].used}
