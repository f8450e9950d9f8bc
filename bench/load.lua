-- wrk script for bench/run.py: one request shape per run, a distinct client address per request.
--
--   wrk -t2 -c32 -d20s -s bench/load.lua URL -- METHOD TOKEN [BODY]
--
-- The servers run behind loopback, which the service trusts as a proxy (TRUSTED_PROXIES), so
-- each request's X-Forwarded-For is the client the rate limiter charges. Addresses come from
-- 198.18.0.0/15, the range RFC 2544 sets aside for benchmarks; nothing is ever sent to them.
-- Each thread walks its own 65,536 addresses, so an address comes round again only after
-- 65,536 of that thread's requests: real per-client limits stay on and are never the bottleneck.
-- done() prints one line, "WRK_JSON {...}", that run.py reads.

local threads = {}
local next_index = 0

function setup(thread)
  thread:set("index", next_index)
  next_index = next_index + 1
  table.insert(threads, thread)
end

local method, token, body, counter
statuses = {}  -- a global: done() reads each thread's copy with thread:get

function init(args)
  method = args[1] or "GET"
  token = args[2] or ""
  body = args[3]
  counter = 0
  statuses = {}
  wrk.headers["Authorization"] = token
  if body then
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  counter = counter + 1
  local n = (counter % 65536) + index * 65536
  wrk.headers["X-Forwarded-For"] = "198." .. (18 + math.floor(n / 65536)) .. "." ..
    (math.floor(n / 256) % 256) .. "." .. (n % 256)
  return wrk.format(method, nil, nil, body)
end

function response(status, headers, response_body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    for status, count in pairs(seen) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, errors.connect, errors.read, errors.write, errors.timeout, errors.status,
    table.concat(parts, ",")))
end
