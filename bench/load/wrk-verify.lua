-- wrk script: POST /api/v1/auth/verify-otp with the next prepared code ("phone code" lines in a file).
-- Usage: wrk ... -s wrk-verify.lua URL -- <codes file>. The driver prepares more codes than the run can use;
-- should they run out, the script repeats the last one, which then fails and is counted as non-2xx.
local codes = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local phone, code = line:match("^(%S+) (%S+)$")
    if phone then codes[#codes + 1] = '{"phone":"' .. phone .. '","otp":"' .. code .. '"}' end
  end
end

function request()
  if i < #codes then i = i + 1 end
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256),
  }
  return wrk.format("POST", "/api/v1/auth/verify-otp", headers, codes[i])
end
