// Time @apollo/query-planner on operations (the planner benchmark's peer).
// usage: node plan_bench.mjs SUPERGRAPH_FILE ROUNDS QUERY_FILE...
// prints JSON {setupMs, plans: {file: {ms: mean planning time, fetches}}}. The
// planner (its query graph) is built once, as a router does at start; it keeps
// no plan cache, so every round plans afresh.
import { readFileSync } from "node:fs";
import { parse } from "graphql";
import { Supergraph, operationFromDocument } from "@apollo/federation-internals";
import { QueryPlanner } from "@apollo/query-planner";

const [sgFile, roundsArg, ...queries] = process.argv.slice(2);
const rounds = Number(roundsArg);
const t0 = process.hrtime.bigint();
const supergraph = Supergraph.build(readFileSync(sgFile, "utf8"));
const planner = new QueryPlanner(supergraph);
const setupMs = Number(process.hrtime.bigint() - t0) / 1e6;
const out = {};
const countFetches = (node) => {
  if (!node) return 0;
  if (node.kind === "Fetch") return 1;
  if (node.kind === "Flatten") return countFetches(node.node);
  return (node.nodes || []).reduce((n, c) => n + countFetches(c), 0);
};
for (const file of queries) {
  const op = operationFromDocument(supergraph.schema, parse(readFileSync(file, "utf8")), { validate: true });
  let fetches = 0;
  planner.buildQueryPlan(op); // warm-up (JIT)
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) {
    fetches = countFetches(planner.buildQueryPlan(op).node);
  }
  out[file] = { ms: Number(process.hrtime.bigint() - start) / 1e6 / rounds, fetches };
}
console.log(JSON.stringify({ setupMs, plans: out }));
