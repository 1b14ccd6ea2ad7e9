-- wrk script: POST /v1/charts with the API key in ORRERY_BENCH_KEY.
-- ORRERY_BENCH_MODE=same: one chart over and over (answered from the cache after the first);
-- ORRERY_BENCH_MODE=unique: a different instant on every request (each one computed).
local key = os.getenv("ORRERY_BENCH_KEY")
local mode = os.getenv("ORRERY_BENCH_MODE") or "unique"
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

-- Requests are built once in init(): a request() that formats a body per call costs wrk as
-- much CPU as the server spends on some requests, and wrk shares this machine's two cores.
local requests = {}
local next_request = 1

local function body_for(n)
  if mode == "same" then
    return '{"datetime":"1990-05-17T14:30","timezone":"Europe/London","latitude":51.5,"longitude":-0.1}'
  end
  -- Distinct minutes from 1900 on, interleaved between threads: no two requests repeat.
  local minutes = n * 8 + (thread_id or 0)
  local day = math.floor(minutes / 1440)
  local minute = minutes % 1440
  local year = 1900 + math.floor(day / 365) % 250
  local doy = day % 365
  local month = math.floor(doy / 31) + 1
  local dom = doy % 28 + 1
  return string.format(
    '{"datetime":"%04d-%02d-%02dT%02d:%02d:00Z","latitude":%.2f,"longitude":%.2f}',
    year, month, dom, math.floor(minute / 60), minute % 60,
    (n % 120) - 60 + 0.25, (n % 340) - 170 + 0.5)
end

function init(args)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }
  -- More distinct requests per thread than a 20 s run sends, so none repeats.
  local count = mode == "same" and 1 or tonumber(os.getenv("ORRERY_BENCH_POOL") or "200000")
  for n = 1, count do
    requests[n] = wrk.format("POST", "/v1/charts", headers, body_for(n))
  end
end

function request()
  local r = requests[next_request]
  next_request = next_request + 1
  if next_request > #requests then
    next_request = 1
  end
  return r
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
