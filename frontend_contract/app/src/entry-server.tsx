// The server's render of one page (used by src/server/main.ts): the page's queries are run
// against the router first (Apollo's getDataFromTree renders until no query is left pending), so
// the HTTP status and <head> are known before the first byte; then the document is streamed with
// React's renderToPipeableStream from the filled cache, which is sent along for hydration.
import { StrictMode } from 'react';
import { renderToPipeableStream, type PipeableStream } from 'react-dom/server';
import { ApolloProvider } from '@apollo/client';
import { getDataFromTree } from '@apollo/client/react/ssr';
import { StaticRouter } from 'react-router-dom';
import { App } from './App';
import { createServerShop } from './lib/apollo';
import { ShopProvider } from './lib/shop';
import { DEFAULT_DESCRIPTION, escapeScriptJson, PageContextProvider, renderHead, SITE_NAME, STATE_ID, type PageContextValue } from './lib/head';

export interface Rendered {
  status: number;
  /** The page's <title>, meta, canonical, Open Graph and JSON-LD tags. */
  head: string;
  /** Streams the app's markup into `root`'s element (call once). */
  pipe: PipeableStream['pipe'];
  /** The <script> with the cache the page hydrates from. */
  state: string;
}

export async function render(url: string, origin: string, graphUrl: string, headers: Record<string, string>): Promise<Rendered> {
  const shop = createServerShop(graphUrl, headers);
  const page: PageContextValue = { head: { title: SITE_NAME, description: DEFAULT_DESCRIPTION }, status: 200, origin };
  const tree = (
    <StrictMode>
      <PageContextProvider value={page}>
        <ApolloProvider client={shop.client}>
          <ShopProvider shop={shop}>
            <StaticRouter location={url}>
              <App />
            </StaticRouter>
          </ShopProvider>
        </ApolloProvider>
      </PageContextProvider>
    </StrictMode>
  );
  await getDataFromTree(tree);
  // Everything is in the cache now: the stream is ready once its shell is (no inline script needed
  // to reveal late parts, which the page's Content-Security-Policy would refuse).
  const stream = await new Promise<PipeableStream>((resolve, reject) => {
    // A boundary larger than progressiveChunkSize would be sent after its fallback and swapped in by
    // an inline script: keep every one in place.
    const s = renderToPipeableStream(tree, { onAllReady: () => resolve(s), onShellError: reject, progressiveChunkSize: Number.POSITIVE_INFINITY });
  });
  const state = JSON.stringify(shop.client.extract());
  return {
    status: page.status,
    head: renderHead(page.head, origin),
    pipe: stream.pipe,
    state: `<script type="application/json" id="${STATE_ID}">${escapeScriptJson(state)}</script>`,
  };
}
