// The renderer's log lines, in the format the Python processes use (deploy/logs.py):
// SHOPGRAPH_LOG_FORMAT=json gives one JSON object per line (time, level, logger, message), as
// compose and Kubernetes collect them; otherwise one readable line.
const json = (process.env.SHOPGRAPH_LOG_FORMAT ?? 'text').trim().toLowerCase() === 'json';

export function log(level: 'INFO' | 'ERROR', message: string, error?: unknown): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : error === undefined ? undefined : String(error);
  const time = new Date().toISOString();
  const line = json
    ? JSON.stringify({ time, level, logger: 'shopgraph.storefront', message, ...(detail ? { exception: detail } : {}) })
    : `${time} ${level} shopgraph.storefront: ${message}${detail ? `\n${detail}` : ''}`;
  (level === 'ERROR' ? process.stderr : process.stdout).write(line + '\n');
}
