// The browser's entry: hydrates the page the server rendered (src/entry-server.tsx) from the
// server's Apollo cache, so no query is sent again and the markup matches; a page without that
// state (the build served on its own, as index.html) is rendered from scratch.
import { StrictMode } from 'react';
import { createRoot, hydrateRoot } from 'react-dom/client';
import { ApolloProvider } from '@apollo/client';
import { BrowserRouter } from 'react-router-dom';
import type { NormalizedCacheObject } from '@apollo/client';
import { App } from './App';
import { createShop } from './lib/apollo';
import { ShopProvider } from './lib/shop';
import { STATE_ID } from './lib/head';
import { registerServiceWorker } from './lib/serviceWorker';
import './styles.css';

const stateElement = document.getElementById(STATE_ID);
const state = stateElement?.textContent ? (JSON.parse(stateElement.textContent) as NormalizedCacheObject) : undefined;
const shop = createShop(window.location.origin, state);

const app = (
  <StrictMode>
    <ApolloProvider client={shop.client}>
      <ShopProvider shop={shop}>
        <BrowserRouter>
          <App />
        </BrowserRouter>
      </ShopProvider>
    </ApolloProvider>
  </StrictMode>
);
const root = document.getElementById('root')!;
if (state) hydrateRoot(root, app);
else createRoot(root).render(app);

registerServiceWorker();
