// Load generator for the router benchmark: autocannon over a list of request bodies.
// usage: node load.mjs CONFIG.json  -> prints one JSON result line on stdout.
// CONFIG: { url, headers, bodies: [string], connections, duration (s) | amount (requests) }
// Bodies are sent round-robin (one body: the same request every time). A response
// counts as bad unless it is HTTP 200 with no "errors" key.
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const bodies = cfg.bodies;
let next = 0;
let bad = 0;
let firstBad = null;

const check = (status, body) => {
  if (status !== 200 || body.includes('"errors"')) {
    bad += 1;
    if (firstBad === null) firstBad = `${status} ${String(body).slice(0, 500)}`;
  }
};

const request = { method: "POST", onResponse: check };
if (bodies.length === 1) {
  request.body = bodies[0];
} else {
  request.setupRequest = (req) => {
    const body = bodies[next];
    next = (next + 1) % bodies.length;
    return { ...req, body };
  };
}

const r = await autocannon({
  url: cfg.url,
  method: "POST",
  headers: cfg.headers,
  connections: cfg.connections,
  ...(cfg.amount ? { amount: cfg.amount } : { duration: cfg.duration }),
  requests: [request],
  timeout: 30,
});
const elapsed = r.duration;

console.log(JSON.stringify({
  requests: r.requests.total,
  seconds: elapsed,
  rps: r.requests.total / elapsed,
  p50: r.latency.p50,
  p90: r.latency.p90,
  p99: r.latency.p99,
  mean: r.latency.average,
  errors: r.errors,
  timeouts: r.timeouts,
  non2xx: r.non2xx,
  bad,
  firstBad,
}));
