// What a page says about itself in the document's <head>: title, description, canonical URL, Open
// Graph and JSON-LD. Rendered on the server (entry-server.tsx reads the page's last word from the
// render's PageContext), and kept up to date by an effect as the shopper moves between pages.
import { createContext, useContext, useEffect, useSyncExternalStore } from 'react';

export const SITE_NAME = 'Shopgraph';
export const DEFAULT_DESCRIPTION = 'Shopgraph: a demo shop of everyday goods, with live stock and prices.';

export interface Head {
  title: string;
  description: string;
  /** The page's path and query, made absolute against the shop's public origin. */
  path?: string;
  image?: string | null;
  type?: 'website' | 'product';
  /** schema.org data, written as application/ld+json. */
  jsonLd?: object | null;
  /** Keep it out of search results (cart, account, 404 ...). */
  noindex?: boolean;
}

/** One server render's outcome, written by the pages while they render (the server is single-pass per render). */
export interface PageContextValue {
  head: Head;
  status: number;
  origin: string;
}

const PageContext = createContext<PageContextValue | null>(null);
export const PageContextProvider = PageContext.Provider;

/** Whether React is past hydration: false on the server and while hydrating, so both render the same. */
export function useHydrated(): boolean {
  return useSyncExternalStore(
    noSubscribe,
    () => true,
    () => false,
  );
}
const noSubscribe = () => () => undefined;

/** The HTTP status of the page (the server answers it; a 404 page sets 404). */
export function useStatus(status: number): void {
  const page = useContext(PageContext);
  if (page) page.status = status;
}

/** Declares the page's head: on the server into this render's PageContext, in the browser into document.head. */
export function useHead(head: Head): void {
  const page = useContext(PageContext);
  if (page) page.head = head;
  const key = JSON.stringify(head);
  useEffect(() => applyHead(JSON.parse(key) as Head), [key]);
}

function absolute(origin: string, path: string | undefined): string | null {
  return path === undefined ? null : new URL(path, origin).toString();
}

/** The tags of a head, in order: [tag, attributes, text]. */
function tagsOf(head: Head, origin: string): Array<[string, Record<string, string>, string?]> {
  const url = absolute(origin, head.path);
  const image = head.image ? absolute(origin, head.image) : null;
  const tags: Array<[string, Record<string, string>, string?]> = [
    ['meta', { name: 'description', content: head.description }],
    ['meta', { property: 'og:site_name', content: SITE_NAME }],
    ['meta', { property: 'og:title', content: head.title }],
    ['meta', { property: 'og:description', content: head.description }],
    ['meta', { property: 'og:type', content: head.type ?? 'website' }],
    ['meta', { name: 'twitter:card', content: image ? 'summary_large_image' : 'summary' }],
  ];
  if (url) tags.push(['link', { rel: 'canonical', href: url }], ['meta', { property: 'og:url', content: url }]);
  if (image) tags.push(['meta', { property: 'og:image', content: image }]);
  if (head.noindex) tags.push(['meta', { name: 'robots', content: 'noindex' }]);
  if (head.jsonLd) tags.push(['script', { type: 'application/ld+json' }, JSON.stringify(head.jsonLd)]);
  return tags;
}

export function fullTitle(head: Head): string {
  return head.title === SITE_NAME ? SITE_NAME : `${head.title} · ${SITE_NAME}`;
}

const escapeHtml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
// Inside <script>: no "</script>" or "<!--" can end it early (JSON allows \u003c for "<").
export const escapeScriptJson = (json: string) =>
  json
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/** The head as HTML, for the server's response. */
export function renderHead(head: Head, origin: string): string {
  const parts = [`<title>${escapeHtml(fullTitle(head))}</title>`];
  for (const [tag, attributes, text] of tagsOf(head, origin)) {
    const attrs = Object.entries(attributes)
      .map(([k, v]) => ` ${k}="${escapeHtml(v)}"`)
      .join('');
    parts.push(text === undefined ? `<${tag}${attrs} data-head>` : `<${tag}${attrs} data-head>${escapeScriptJson(text)}</${tag}>`);
  }
  return parts.join('');
}

/** The head in the browser, after a client-side navigation (the server wrote the first one). */
function applyHead(head: Head): void {
  document.title = fullTitle(head);
  for (const old of document.head.querySelectorAll('[data-head]')) old.remove();
  for (const [tag, attributes, text] of tagsOf(head, window.location.origin)) {
    const element = document.createElement(tag);
    for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, v);
    element.setAttribute('data-head', '');
    if (text !== undefined) element.textContent = text;
    document.head.appendChild(element);
  }
}

/** The id of the <script type="application/json"> holding the server's Apollo cache for hydration. */
export const STATE_ID = 'shopgraph-state';
