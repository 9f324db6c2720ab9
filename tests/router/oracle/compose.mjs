// Compose subgraph SDLs with @apollo/composition (the reference implementation).
// stdin: JSON [{name, url, sdl}]; stdout: supergraph SDL; exit 1 with errors on stderr.
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const services = JSON.parse(input).map((s) => ({
  name: s.name,
  url: s.url,
  typeDefs: parse(s.sdl),
}));
const result = composeServices(services);
if (result.errors) {
  for (const e of result.errors) console.error(e.message);
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
