--[[
  Shared by every count-*.lua script (prepended when the script is loaded).
  epochMs: a Stem UTC timestamp ("2024-05-06T07:08:09.123456Z") → epoch milliseconds, or nil.
  classify: an envelope's headers table → "signed" | "unsigned", and its key id.
]]
local function epochMs(text)
  local y, mo, d, h, mi, s, frac = string.match(text or '', '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)Z$')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1; mo = mo + 12 end
  local days = 365 * y + math.floor(y / 4) - math.floor(y / 100) + math.floor(y / 400) + math.floor((153 * (mo - 3) + 2) / 5) + d - 719469
  local ms = tonumber(string.sub(frac .. '000', 1, 3))
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 + tonumber(s) * 1000 + ms
end

-- tally = { signed, recent, unsigned, broken }; counted = set of key ids; after = epoch ms
local function tally(totals, counted, after, headers, enqueuedAt)
  if type(headers) ~= 'table' then
    totals[4] = totals[4] + 1
    return
  end
  local keyId = headers['stem-signature-key']
  if type(keyId) ~= 'string' then
    totals[3] = totals[3] + 1
  elseif counted[keyId] then
    totals[1] = totals[1] + 1
    local at = epochMs(enqueuedAt)
    if at == nil or at > after then totals[2] = totals[2] + 1 end
  end
end

local function decodeHeaders(text)
  local ok, decoded = pcall(cjson.decode, text or '')
  if ok then return decoded end
  return nil
end

local function streamFields(fields)
  local headers, enqueuedAt
  for j = 1, #fields, 2 do
    if fields[j] == 'headers' then headers = fields[j + 1] elseif fields[j] == 'enqueuedAt' then enqueuedAt = fields[j + 1] end
  end
  return decodeHeaders(headers), enqueuedAt
end
