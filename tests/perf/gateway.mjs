// Apollo Gateway for the router benchmark: the peer our router is measured against.
// usage: node gateway.mjs SUPERGRAPH_FILE PORT JWKS_URL  (env SHOPGRAPH_SERVICE_SECRET)
// -> prints "ready <url>" when listening.
//
// It does the same per-request auth work as our router (router/auth.py): verify the
// client's ES256 access token against the users subgraph's JWKS on every request,
// and forward the identity as an HS256 internal token (cached per identity for 10 s)
// that the subgraphs trust. @apollo/gateway and @apollo/server come from the
// differential tests' install in tests/router/oracle.
import { createHmac, createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const oracle = join(dirname(fileURLToPath(import.meta.url)), "..", "router", "oracle");
const require = createRequire(join(oracle, "package.json"));
const load = (name) => import(pathToFileURL(require.resolve(name)).href);
const { ApolloServer } = await load("@apollo/server");
const { startStandaloneServer } = await load("@apollo/server/standalone");
const { ApolloGateway, RemoteGraphQLDataSource } = await load("@apollo/gateway");
const { GraphQLError } = await load("graphql");

const [file, port, jwksUrl] = process.argv.slice(2);
const secret = process.env.SHOPGRAPH_SERVICE_SECRET ?? "";

const b64 = (buf) => Buffer.from(buf).toString("base64url");
const unb64 = (s) => Buffer.from(s, "base64url");

let keys = new Map();
async function refreshKeys() {
  const jwks = await (await fetch(jwksUrl)).json();
  keys = new Map(jwks.keys.map((k) => [k.kid, createPublicKey({ key: k, format: "jwk" })]));
}
await refreshKeys();

const unauthenticated = (message) =>
  new GraphQLError(message, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });

async function identify(authorization) {
  if (!authorization) return null;
  const [scheme, token] = authorization.split(" ");
  if (scheme.toLowerCase() !== "bearer" || !token) throw unauthenticated("bad Authorization header");
  const [h, p, s] = token.split(".");
  const header = JSON.parse(unb64(h));
  if (header.alg !== "ES256") throw unauthenticated("token algorithm not accepted");
  if (!keys.has(header.kid)) await refreshKeys();
  const key = keys.get(header.kid);
  if (!key) throw unauthenticated("unknown signing key");
  const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, unb64(s));
  if (!ok) throw unauthenticated("invalid access token");
  const claims = JSON.parse(unb64(p));
  const now = Date.now() / 1000;
  if (claims.iss !== "shopgraph-users" || claims.aud !== "shopgraph" || !(claims.exp > now)
      || (claims.typ ?? "access") !== "access") {
    throw unauthenticated("invalid access token");
  }
  return { uid: String(claims.uid ?? claims.sub), role: claims.role ?? "CUSTOMER" };
}

const minted = new Map();
// Scoped to the one subgraph it is sent to, as our router mints them (router/auth.py audience_of).
function internalToken(identity, graph) {
  const cacheKey = `${graph}/` + (identity ? `${identity.uid}/${identity.role}` : "");
  const now = Date.now() / 1000;
  const hit = minted.get(cacheKey);
  if (hit && now - hit.at < 10) return hit.value;
  const iat = Math.floor(now);
  const claims = { iss: "shopgraph-internal", aud: `shopgraph-subgraph:${graph.toLowerCase()}`, sub: "service:router",
    iat, exp: iat + 60 };
  if (identity) Object.assign(claims, identity);
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  const value = `Bearer ${head}.${body}.${sig}`;
  minted.set(cacheKey, { at: now, value });
  return value;
}

class AuthDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (secret) request.http.headers.set("authorization", internalToken(context.identity ?? null, this.graph));
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(file, "utf8"),
  buildService: ({ name, url }) => Object.assign(new AuthDataSource({ url }), { graph: name }),
});
const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(port), host: "127.0.0.1" },
  context: async ({ req }) => ({ identity: await identify(req.headers.authorization) }),
});
console.log(`ready ${url}`);
