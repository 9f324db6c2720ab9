import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApolloProvider } from '@apollo/client';
import { BrowserRouter } from 'react-router-dom';
import { App } from './App';
import { createShop } from './lib/apollo';
import { ShopProvider } from './lib/shop';
import { registerServiceWorker } from './lib/serviceWorker';
import './styles.css';

const shop = createShop();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ApolloProvider client={shop.client}>
      <ShopProvider shop={shop}>
        <BrowserRouter>
          <App />
        </BrowserRouter>
      </ShopProvider>
    </ApolloProvider>
  </StrictMode>,
);

registerServiceWorker();
