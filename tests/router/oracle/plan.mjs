// Print @apollo/query-planner's plan of an operation (for comparing plans by hand).
// usage: node plan.mjs SUPERGRAPH_FILE QUERY_FILE
import { readFileSync } from "node:fs";
import { parse } from "graphql";
import { Supergraph, operationFromDocument } from "@apollo/federation-internals";
import { QueryPlanner, prettyFormatQueryPlan } from "@apollo/query-planner";

const [sgFile, queryFile] = process.argv.slice(2);
const supergraph = Supergraph.build(readFileSync(sgFile, "utf8"));
const planner = new QueryPlanner(supergraph);
const op = operationFromDocument(supergraph.schema, parse(readFileSync(queryFile, "utf8")), { validate: true });
console.log(prettyFormatQueryPlan(planner.buildQueryPlan(op)));
