// The storefront server's own Prometheus series (its /metrics, scraped beside the router's).
type Labels = string; // `kind="page",status="200"`

export class Metrics {
  private requests = new Map<Labels, number>();
  private seconds = new Map<string, { sum: number; count: number }>();
  private failures = new Map<string, number>();

  observe(kind: string, status: number, seconds: number): void {
    const labels = `kind="${kind}",status="${status}"`;
    this.requests.set(labels, (this.requests.get(labels) ?? 0) + 1);
    const s = this.seconds.get(kind) ?? { sum: 0, count: 0 };
    s.sum += seconds;
    s.count += 1;
    this.seconds.set(kind, s);
  }

  failed(kind: string): void {
    this.failures.set(kind, (this.failures.get(kind) ?? 0) + 1);
  }

  text(): string {
    const lines = [
      '# HELP shopgraph_storefront_requests_total Requests answered by the storefront server, by kind and status.',
      '# TYPE shopgraph_storefront_requests_total counter',
      ...[...this.requests].map(([labels, n]) => `shopgraph_storefront_requests_total{${labels}} ${n}`),
      '# HELP shopgraph_storefront_render_seconds Time to answer (pages: data from the graph, then the render).',
      '# TYPE shopgraph_storefront_render_seconds summary',
      ...[...this.seconds].flatMap(([kind, s]) => [
        `shopgraph_storefront_render_seconds_sum{kind="${kind}"} ${s.sum}`,
        `shopgraph_storefront_render_seconds_count{kind="${kind}"} ${s.count}`,
      ]),
      '# HELP shopgraph_storefront_failures_total Requests that failed with an error (logged), by kind.',
      '# TYPE shopgraph_storefront_failures_total counter',
      ...[...this.failures].map(([kind, n]) => `shopgraph_storefront_failures_total{kind="${kind}"} ${n}`),
    ];
    return lines.join('\n') + '\n';
  }
}
