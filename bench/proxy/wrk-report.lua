-- wrk script for bench/proxy: an optional absolute-form request target (BENCH_PATH, for explicit
-- HTTP proxies), an optional Host header (BENCH_HOST), and one machine-readable summary line.
local path = os.getenv("BENCH_PATH")
local host = os.getenv("BENCH_HOST")
if path and path ~= "" then wrk.path = path end
if host and host ~= "" then wrk.headers["Host"] = host end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
