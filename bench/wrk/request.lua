-- One request, as the environment describes it (set by bench/run.mjs):
--   BENCH_METHOD, BENCH_PATH, BENCH_TOKEN (bearer, optional),
--   BENCH_BODY_FILE (optional), BENCH_CONTENT_TYPE (with a body)
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or
    "application/json"
end

-- One machine-readable line: requests, seconds, p50 and p99 latency in
-- microseconds, socket errors and non-2xx answers (a benchmark of errors
-- is void: bench/run.mjs refuses it).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %.6f %d %d %d %d\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
