// Installs the service worker (sw/sw.ts, built to /sw.js) — the one place the app registers it, so
// that an entry point (the browser's, a server-rendered page's hydration) only calls this. No
// inline script does it: the page's Content-Security-Policy allows scripts from this origin only.
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((e: unknown) => {
      console.warn('the offline service worker could not be installed', e);
    });
  });
}
