-- wrk script: POST /users with a fresh email address on every request, so
-- every request creates a user (201) on every server.
local counter = 0
local run = tostring(os.time())

request = function()
  counter = counter + 1
  local body = string.format('{"email":"load-%s-%d@example.com","name":"Load Test %d"}', run, counter, counter)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
