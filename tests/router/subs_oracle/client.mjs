// A real npm client subscribing through the router; prints one JSON line:
// {"results": [...], "error": null | {...}, "completed": bool}.
//
//   node client.mjs ws|sse|multipart URL QUERY COUNT [TOKEN]
//
// ws: graphql-ws (graphql-transport-ws); sse: graphql-sse (distinct connections);
// multipart: Apollo Client's HttpLink (multipart subscriptions).
import { createClient as createWsClient } from "graphql-ws";
import { createClient as createSseClient } from "graphql-sse";
import WebSocket from "ws";
import { ApolloClient, InMemoryCache, HttpLink, gql } from "@apollo/client/core/index.js";

const [mode, url, query, countArg, token] = process.argv.slice(2);
const count = Number(countArg);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const out = { results: [], error: null, completed: false };

function done() {
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

function describe(e) {
  if (e && typeof e === "object" && "code" in e && "reason" in e) return { close: e.code, reason: e.reason };
  if (Array.isArray(e)) return { graphQLErrors: e };
  if (e instanceof Response) return { status: e.status };
  const r = { message: String(e && e.message ? e.message : e) };
  if (e && e.graphQLErrors && e.graphQLErrors.length) r.graphQLErrors = e.graphQLErrors;
  if (e && e.protocolErrors && e.protocolErrors.length) r.protocolErrors = e.protocolErrors;
  if (e && e.networkError) r.network = { message: e.networkError.message, status: e.networkError.statusCode,
                                         result: e.networkError.result };
  if (e && e.response) r.status = e.response.status;
  return r;
}

const sink = {
  next: (v) => { out.results.push(v); if (out.results.length >= count) done(); },
  error: (e) => { out.error = describe(e); done(); },
  complete: () => { out.completed = true; done(); },
};

setTimeout(() => { out.error = { message: "timeout" }; done(); }, 60000);

if (mode === "ws") {
  const client = createWsClient({ url, webSocketImpl: WebSocket, connectionParams: headers, retryAttempts: 0 });
  client.subscribe({ query }, sink);
} else if (mode === "sse") {
  const client = createSseClient({ url, headers, retryAttempts: 0 });
  client.subscribe({ query }, sink);
} else if (mode === "multipart") {
  const client = new ApolloClient({ link: new HttpLink({ uri: url, headers }), cache: new InMemoryCache() });
  client.subscribe({ query: gql(query), fetchPolicy: "no-cache" }).subscribe({
    next: (v) => sink.next(v.errors ? { data: v.data, errors: v.errors } : { data: v.data }),
    error: sink.error,
    complete: sink.complete,
  });
} else {
  throw new Error(`unknown mode ${mode}`);
}
