// Apollo Client's persisted-queries link against the router; prints one JSON line:
// {"results": [data, data], "requests": [{method, hasQuery, hash}]}.
//
//   node apq.mjs URL QUERY
//
// Two clients (two page loads, empty caches) run QUERY with hashed GET requests,
// as a CDN-friendly storefront would: the first must register the query, the
// second finds it by hash alone.
import { createHash } from "node:crypto";
import { ApolloClient, InMemoryCache, HttpLink, gql } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";

const [url, query] = process.argv.slice(2);
const requests = [];

async function loggingFetch(input, init) {
  const u = new URL(typeof input === "string" ? input : input.url);
  const body = init && init.body ? JSON.parse(init.body) : null;
  const ext = body ? body.extensions : JSON.parse(u.searchParams.get("extensions") || "null");
  requests.push({
    method: (init && init.method) || "GET",
    hasQuery: Boolean(body ? body.query : u.searchParams.get("query")),
    hash: ext && ext.persistedQuery ? ext.persistedQuery.sha256Hash : null,
  });
  return fetch(input, init);
}

function client() {
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  const link = createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({ uri: url, fetch: loggingFetch })
  );
  return new ApolloClient({ link, cache: new InMemoryCache({ addTypename: false }) });
}

const results = [];
for (let i = 0; i < 2; i++) {
  const r = await client().query({ query: gql(query), fetchPolicy: "network-only" });
  results.push(r.data);
}
process.stdout.write(JSON.stringify({ results, requests }) + "\n");
