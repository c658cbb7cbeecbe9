--[[
  Counts one batch of a Stem stream's envelopes by signing key, server-side, so only counts cross
  the wire: memory on our side is bounded by the batch, not the backlog.

  Input:
    KEYS[1] stream key (<ns>:stream:<queue>[:pN])
    ARGV[1] start id ("-", or "(<id>" for exclusive)
    ARGV[2] batch size (COUNT)
    ARGV[3] epoch ms: envelopes enqueued after it are counted separately
    ARGV[4..] key ids to count

  Output: { last id seen or "", entries scanned, signed with a counted key, of those enqueued
            after ARGV[3], unsigned, unparseable }
]]
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local counted = {}
for i = 4, #ARGV do counted[ARGV[i]] = true end
local totals = { 0, 0, 0, 0 }
local last = ''
for _, entry in ipairs(entries) do
  last = entry[1]
  local headers, enqueuedAt = streamFields(entry[2])
  tally(totals, counted, tonumber(ARGV[3]), headers, enqueuedAt)
end
return { last, #entries, totals[1], totals[2], totals[3], totals[4] }
