-- wrk script of the load test. With WRK_POST=1 every request is
-- POST /users with a fresh email address, so every request creates a user
-- (201) on every server. At the end it prints the run's figures as one JSON
-- line for the harness (latencies in µs; errors are socket errors and
-- responses with a status of 400 or more).
local counter = 0
local run = tostring(os.time())

if os.getenv("WRK_POST") == "1" then
  request = function()
    counter = counter + 1
    local body = string.format('{"email":"load-%s-%d@example.com","name":"Load Test %d"}', run, counter, counter)
    return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%.6f,"errors":%d,"p50_us":%.1f,"p99_us":%.1f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
