import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { print, type DocumentNode } from 'graphql';
import { ApolloLink, execute, Observable, type FetchResult, type Operation } from '@apollo/client/core';
import * as generated from '../src/gql/graphql';
import { persistedQueryLink } from '../src/lib/apollo';

interface Entry {
  id: string;
  name: string;
  body: string;
}
const manifest = JSON.parse(readFileSync(new URL('../../manifest.json', import.meta.url), 'utf8')) as { operations: Entry[] };
const documents = Object.entries(generated)
  .filter(([key]) => key.endsWith('Document'))
  .map(([key, doc]) => [key.slice(0, -'Document'.length), doc as DocumentNode] as const);

describe('persisted queries', () => {
  it('the app sends every operation exactly as the manifest holds it', () => {
    expect(documents.map(([name]) => name).sort()).toEqual(manifest.operations.map((op) => op.name).sort());
    for (const [name, doc] of documents) {
      const entry = manifest.operations.find((op) => op.name === name)!;
      expect(print(doc)).toBe(entry.body);
      // so the manifest id is also the APQ hash of what the app sends
      expect(createHash('sha256').update(print(doc)).digest('hex')).toBe(entry.id);
    }
  });

  it('sends the manifest id in the persisted-query extension', async () => {
    const ids = Object.fromEntries(manifest.operations.map((op) => [op.name, op.id]));
    const seen: Operation[] = [];
    const terminal = new ApolloLink((operation) => {
      seen.push(operation);
      return new Observable<FetchResult>((o) => {
        o.next({ data: { categories: [] } });
        o.complete();
      });
    });
    const doc = generated.CategoryNavDocument as DocumentNode;
    await new Promise((resolve, reject) => execute(persistedQueryLink(ids).concat(terminal), { query: doc }).subscribe({ next: resolve, error: reject }));
    expect(seen[0].extensions.persistedQuery).toEqual({ version: 1, sha256Hash: ids.CategoryNav });
    // An operation outside the manifest is refused here, not sent for the router to refuse.
    const unknown = new Promise((resolve, reject) =>
      execute(persistedQueryLink({}).concat(terminal), { query: doc }).subscribe({ next: resolve, error: reject }),
    );
    await expect(unknown).rejects.toThrow(/CategoryNav is not in the persisted-query manifest/);
    expect(seen).toHaveLength(1);
  });

  it('falls back to sending the query to a router without persisted queries, then keeps to it', async () => {
    const ids = Object.fromEntries(manifest.operations.map((op) => [op.name, op.id]));
    const sent: Array<{ query: boolean; id: unknown }> = [];
    const plainRouter = new ApolloLink((operation) => {
      const http = (operation.getContext().http ?? {}) as { includeQuery?: boolean; includeExtensions?: boolean };
      const query = http.includeQuery !== false;
      sent.push({ query, id: http.includeExtensions === false ? undefined : operation.extensions.persistedQuery?.sha256Hash });
      return new Observable<FetchResult>((o) => {
        if (!query) {
          const errors = [{ message: "The request has no 'query' string.", extensions: { code: 'BAD_REQUEST' } }];
          o.error(Object.assign(new Error('Response not successful: Received status code 400'), { statusCode: 400, result: { errors } }));
          return;
        }
        o.next({ data: { categories: [] } });
        o.complete();
      });
    });
    const link = persistedQueryLink(ids).concat(plainRouter);
    const doc = generated.CategoryNavDocument as DocumentNode;
    const once = () => new Promise((resolve, reject) => execute(link, { query: doc }).subscribe({ next: resolve, error: reject }));
    await expect(once()).resolves.toEqual({ data: { categories: [] } });
    await expect(once()).resolves.toEqual({ data: { categories: [] } });
    expect(sent).toEqual([
      { query: false, id: ids.CategoryNav },
      { query: true, id: undefined },
      { query: true, id: undefined },
    ]);
  });
});
