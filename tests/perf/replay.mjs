// Record-and-replay stand-ins for the subgraphs, so the benchmark can load the
// routers without the (Python) subgraphs being the bottleneck.
// usage: node replay.mjs '{"users": "http://127.0.0.1:N/graphql", ...}'
// -> prints "ready {name: url}" (one port per subgraph).
//
// A request is keyed by (subgraph, caller's uid from the internal token, body).
// The first time a key is seen it is forwarded to the real subgraph and its
// response kept; after that the kept response is served from memory. The
// routers still do all of their own work per request (parsing, planning-cache
// lookups, representations, subgraph HTTP, merging, shaping); only the subgraphs'
// work is taken away.
import { createServer } from "node:http";

const upstreams = JSON.parse(process.argv[2]);
const kept = new Map();

function caller(authorization) {
  const payload = (authorization ?? "").split(".")[1];
  if (!payload) return "";
  try {
    return String(JSON.parse(Buffer.from(payload, "base64url")).uid ?? "");
  } catch {
    return "";
  }
}

async function serve(name, upstream, req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const key = `${name}\n${caller(req.headers.authorization)}\n${body}`;
  let hit = kept.get(key);
  if (hit === undefined) {
    const r = await fetch(upstream, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", accept: "application/json",
        authorization: req.headers.authorization ?? "" },
    });
    hit = { status: r.status, body: Buffer.from(await r.arrayBuffer()),
      type: r.headers.get("content-type") ?? "application/json" };
    if (r.status === 200) kept.set(key, hit);
  }
  res.writeHead(hit.status, { "content-type": hit.type, "content-length": hit.body.length });
  res.end(hit.body);
}

const urls = {};
for (const [name, upstream] of Object.entries(upstreams)) {
  const server = createServer((req, res) => {
    serve(name, upstream, req, res).catch((e) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(String(e));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  urls[name] = `http://127.0.0.1:${server.address().port}/graphql`;
}
console.log(`ready ${JSON.stringify(urls)}`);
