-- wrk script: cycles through the lines "<instance id> <child-app API key>" of $FT_BENCH_IDS and
-- sends, with "Authorization: Bearer <key>",
--   entitlements: GET  /api/v1/instances/<id>/entitlements
--   ofrep:        POST /ofrep/v1/evaluate/flags/<flag> {"context":{}} (the key names the instance)
--   static:       GET  <path>?id=<id> (the baseline pays for the same script work)
-- chosen by $FT_BENCH_MODE; $FT_BENCH_PATH is the static path, $FT_BENCH_FLAG the flag key.
local ids, keys = {}, {}
for line in io.lines(os.getenv("FT_BENCH_IDS")) do
    local id, key = line:match("^(%S+)%s+(%S+)$")
    ids[#ids + 1] = id or line
    keys[#keys + 1] = key or ""
end
local mode = os.getenv("FT_BENCH_MODE")
local path = os.getenv("FT_BENCH_PATH") or "/"
local flag = os.getenv("FT_BENCH_FLAG") or "telemedicine"
local n = 0

request = function()
    n = n + 1
    local i = (n % #ids) + 1
    local id, auth = ids[i], "Bearer " .. keys[i]
    if mode == "entitlements" then
        return wrk.format("GET", "/api/v1/instances/" .. id .. "/entitlements", {["Authorization"] = auth})
    elseif mode == "ofrep" then
        return wrk.format("POST", "/ofrep/v1/evaluate/flags/" .. flag,
            {["Content-Type"] = "application/json", ["Authorization"] = auth}, '{"context":{}}')
    end
    -- the baseline receives the same header bytes
    return wrk.format("GET", path .. "?id=" .. id, {["Authorization"] = auth})
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
