// /sitemap.xml and /robots.txt, from the catalog as the graph serves it (the same typed operations
// as the pages: a router that only takes persisted queries serves them too).
import type { ApolloQueryResult } from '@apollo/client';
import { CategoryNavDocument, ProductListDocument, type ProductListQuery } from '../gql/graphql';
import { createServerShop } from '../lib/apollo';

const PAGE = 100; // the graph's largest page
const MAX_URLS = 50_000; // a sitemap file's limit
const FRESH_MS = 5 * 60_000; // the catalog is walked at most this often (a sitemap request is cheap to send)

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** Every page worth indexing: home, the catalog, each category, each active product. */
export async function sitemapPaths(graphUrl: string): Promise<string[]> {
  const { client } = createServerShop(graphUrl);
  const paths = ['/', '/products'];
  const categories = await client.query({ query: CategoryNavDocument });
  for (const c of categories.data.categories) paths.push(`/products?category=${encodeURIComponent(c.slug)}`);
  let after: string | null = null;
  for (;;) {
    const page: ApolloQueryResult<ProductListQuery> = await client.query({
      query: ProductListDocument,
      variables: { first: PAGE, after, sortKey: 'NAME' },
    });
    const products = page.data.products;
    for (const edge of products.edges) paths.push(`/p/${encodeURIComponent(edge.node.sku)}`);
    if (!products.pageInfo.hasNextPage || !products.pageInfo.endCursor || paths.length >= MAX_URLS) break;
    after = products.pageInfo.endCursor;
  }
  return paths.slice(0, MAX_URLS);
}

let cached: { at: number; paths: Promise<string[]> } | null = null;

export async function catalogSitemap(graphUrl: string, origin: string): Promise<string> {
  if (!cached || Date.now() - cached.at > FRESH_MS) {
    const paths = sitemapPaths(graphUrl);
    cached = { at: Date.now(), paths };
    paths.catch(() => {
      if (cached?.paths === paths) cached = null; // a failed walk is not kept
    });
  }
  const paths = await cached.paths;
  const urls = paths.map((path) => `<url><loc>${escapeXml(new URL(path, origin).toString())}</loc></url>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n${urls.join('\n')}\n</urlset>\n`;
}

/**
 * Crawlers may read the shop's pages, not the graph nor the pages behind a sign-in. The cart page
 * stays open: to a crawler it is an empty shell, and a blocked page Lighthouse counts against SEO.
 */
export function robotsTxt(origin: string): string {
  const disallowed = ['/checkout', '/orders', '/account', '/order-status', '/admin', '/graphql', '/signin', '/signup'];
  return ['User-agent: *', 'Allow: /', ...disallowed.map((p) => `Disallow: ${p}`), `Sitemap: ${origin}/sitemap.xml`, ''].join('\n');
}
