--[[
  Counts one batch of a delayed ZSET (member = Envelope.toJson(), score = notBefore) by signing key.

  Input:
    KEYS[1] delayed key (<ns>:delayed:<queue>)
    ARGV[1] start rank
    ARGV[2] batch size
    ARGV[3] epoch ms: envelopes enqueued after it are counted separately
    ARGV[4..] key ids to count

  Output: { next rank ("" when done), members scanned, signed with a counted key, of those enqueued
            after ARGV[3], unsigned, unparseable }
]]
local start = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local members = redis.call('ZRANGE', KEYS[1], start, start + size - 1)
local counted = {}
for i = 4, #ARGV do counted[ARGV[i]] = true end
local totals = { 0, 0, 0, 0 }
for _, member in ipairs(members) do
  local envelope = decodeHeaders(member)
  if type(envelope) == 'table' then
    tally(totals, counted, tonumber(ARGV[3]), envelope['headers'], envelope['enqueuedAt'])
  else
    totals[4] = totals[4] + 1
  end
end
local nextRank = ''
if #members == size then nextRank = tostring(start + size) end
return { nextRank, #members, totals[1], totals[2], totals[3], totals[4] }
