-- Read, without counting anything, the user's day counter and the minute counters of the given
-- keys, on Redis's clock (the clock check_request.lua counts on).
--
-- KEYS[1]: the user's day counter; KEYS[2..]: the keys' minute counters (same hash tag).
-- Returns {day count, minute count of KEYS[2], ...}; a counter left from an earlier window is 0.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function used(key, length)
  local start = now - now % length
  local stored = redis.call('HMGET', key, 'w', 'c')
  if tonumber(stored[1]) == start then
    return tonumber(stored[2]) or 0
  end
  return 0
end

local result = {used(KEYS[1], 86400000)}
for i = 2, #KEYS do
  result[#result + 1] = used(KEYS[i], 60000)
end
return result
