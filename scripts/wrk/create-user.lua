-- POST /v1/users with a fresh e-mail each time (TOKEN from the environment).
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  thread_id = id
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"email":"u-%d-%d-%d@example.com","password":"correct horse battery staple","display_name":"U","roles":["employee"]}',
    thread_id, counter, math.random(1, 1000000000))
  return wrk.format("POST", "/v1/users", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
  }, body)
end
