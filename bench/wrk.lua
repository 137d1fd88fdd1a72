-- wrk script for bench/run: the request comes from the environment (BENCH_METHOD, BENCH_BODY,
-- BENCH_COOKIE; BENCH_PROJECTS, comma-separated ids, replace @PROJECT@ in the body in turn),
-- and the summary is one machine-readable line:
-- RESULT requests duration_us p50_us p95_us p99_us non_2xx_3xx socket_errors
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local cookie = os.getenv("BENCH_COOKIE")

wrk.method = method
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local projects = {}
for id in string.gmatch(os.getenv("BENCH_PROJECTS") or "", "[^,]+") do
  projects[#projects + 1] = id
end
if #projects > 0 then
  local n = 0
  request = function()
    n = n + 1
    local b = string.gsub(body, "@PROJECT@", projects[(n % #projects) + 1])
    return wrk.format(nil, nil, nil, b)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
