-- wrk script: POST /api/v1/auth/send-otp with a new phone number and client address on every request.
-- Usage: wrk ... -s wrk-send.lua URL -- <first phone index>. Numbers follow bench/load/phones.ts.
local prefixes = { "98", "99", "97", "96", "95", "94", "93", "91", "90" }
local n = 0

function init(args)
  n = tonumber(args[1])
end

local function phone(i)
  local prefix = prefixes[(math.floor(i / 100000000) % #prefixes) + 1]
  return string.format("+91%s%08d", prefix, i % 100000000)
end

function request()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256),
  }
  return wrk.format("POST", "/api/v1/auth/send-otp", headers, '{"phone":"' .. phone(n) .. '"}')
end
