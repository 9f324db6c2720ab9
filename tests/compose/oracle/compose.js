// Reference composition: reads [{name, url, sdl}] JSON on stdin, prints
// {"supergraph": sdl} or {"errors": [{code, message}]} as JSON on stdout.
"use strict";
const { composeServices } = require("@apollo/composition");
const { parse } = require("graphql");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const subgraphs = JSON.parse(input);
  let out;
  try {
    const result = composeServices(
      subgraphs.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(s.sdl) }))
    );
    out = result.errors
      ? { errors: result.errors.map((e) => ({ code: e.extensions?.code ?? null, message: e.message })) }
      : { supergraph: result.supergraphSdl };
  } catch (e) {
    out = { errors: [{ code: e.extensions?.code ?? "EXCEPTION", message: String(e.message ?? e) }] };
  }
  process.stdout.write(JSON.stringify(out));
});
