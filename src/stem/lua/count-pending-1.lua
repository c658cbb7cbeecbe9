--[[
  Counts one batch of a consumer group's pending (delivered, not acknowledged) entries by signing key.

  Input:
    KEYS[1] stream key
    ARGV[1] consumer group (<ns>:group:<queue>)
    ARGV[2] start id ("-", or "(<id>" for exclusive)
    ARGV[3] batch size
    ARGV[4] epoch ms: envelopes enqueued after it are counted separately
    ARGV[5..] key ids to count

  Output: same shape as count-stream-1.lua
]]
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], '+', tonumber(ARGV[3]))
local counted = {}
for i = 5, #ARGV do counted[ARGV[i]] = true end
local totals = { 0, 0, 0, 0 }
local last = ''
for _, item in ipairs(pending) do
  last = item[1]
  local found = redis.call('XRANGE', KEYS[1], item[1], item[1])
  if #found == 1 then
    local headers, enqueuedAt = streamFields(found[1][2])
    tally(totals, counted, tonumber(ARGV[4]), headers, enqueuedAt)
  end
end
return { last, #pending, totals[1], totals[2], totals[3], totals[4] }
