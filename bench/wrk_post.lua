-- wrk script for bench/webhook_bench.py: POST the pre-signed webhooks of a request file, in order,
-- and stop after a fixed number of responses.
-- Usage: wrk -t1 -c16 -d120s -s bench/wrk_post.lua http://127.0.0.1:PORT -- REQUEST_FILE COUNT
-- REQUEST_FILE has one request per line: "<X-Hub-Signature-256 value>\t<raw JSON body>".

local requests = {}
local next_index = 0
local wanted = 0
local answered = 0
local non_200 = 0

function init(args)
  wanted = tonumber(args[2])
  for line in io.lines(args[1]) do
    local signature, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/webhook", {
      ["Content-Type"] = "application/json",
      ["X-Hub-Signature-256"] = signature,
    }, body)
  end
end

function request()
  next_index = next_index + 1
  if next_index > #requests then
    next_index = 1 -- only reached if the file has no slack: replays count as duplicates
  end
  return requests[next_index]
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    non_200 = non_200 + 1
  end
  if answered >= wanted then
    io.stderr:write(string.format("bench: answered=%d non_200=%d sent=%d\n", answered, non_200, next_index))
    wrk.thread:stop()
  end
end
