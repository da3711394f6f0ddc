-- wrk script: cycles through the instance ids in $FT_BENCH_IDS (one per line) and sends
--   entitlements: GET  /api/v1/instances/<id>/entitlements
--   ofrep:        POST /ofrep/v1/evaluate/flags/<flag> {"context":{"targetingKey":"<id>"}}
--   static:       GET  <path>?id=<id> (the baseline pays for the same script work)
-- chosen by $FT_BENCH_MODE; $FT_BENCH_PATH is the static path, $FT_BENCH_FLAG the flag key.
local ids = {}
for line in io.lines(os.getenv("FT_BENCH_IDS")) do
    ids[#ids + 1] = line
end
local mode = os.getenv("FT_BENCH_MODE")
local path = os.getenv("FT_BENCH_PATH") or "/"
local flag = os.getenv("FT_BENCH_FLAG") or "telemedicine"
local n = 0

request = function()
    n = n + 1
    local id = ids[(n % #ids) + 1]
    if mode == "entitlements" then
        return wrk.format("GET", "/api/v1/instances/" .. id .. "/entitlements")
    elseif mode == "ofrep" then
        return wrk.format("POST", "/ofrep/v1/evaluate/flags/" .. flag, {["Content-Type"] = "application/json"},
            '{"context":{"targetingKey":"' .. id .. '"}}')
    end
    return wrk.format("GET", path .. "?id=" .. id)
end

-- FT_BENCH_DEBUG=1: print the first answer of each unexpected status
if os.getenv("FT_BENCH_DEBUG") == "1" then
    local seen = {}
    response = function(status, headers, body)
        if status >= 300 and not seen[status] then
            seen[status] = true
            io.stderr:write(status .. " " .. body:sub(1, 300) .. "\n")
        end
    end
end
