// Apollo Client's HTTP link (what the storefront uses) reading a query with @defer.
// usage: node defer_client.mjs URL QUERY -> JSON array of the results the link emits
import { HttpLink, execute, gql } from "@apollo/client/core/index.js";

const [uri, query] = process.argv.slice(2);
const results = [];
await new Promise((resolve, reject) => {
  execute(new HttpLink({ uri }), { query: gql(query) }).subscribe({
    next: (r) => results.push(r),
    error: reject,
    complete: resolve,
  });
});
console.log(JSON.stringify(results));
