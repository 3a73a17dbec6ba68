/**
 * Prometheus text exposition (format 0.0.4) for `GET /metrics`: requests by operation and status,
 * request durations as a histogram, bytes fetched from upstream and sent to clients, cache hits,
 * and the memory budget in use. Label values are our own operation names and status codes, never
 * request data.
 */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, { buckets: number[]; sum: number; count: number }>();
  upstreamBytes = 0;
  responseBytes = 0;
  cacheHits = 0;
  cacheMisses = 0;

  constructor(private readonly gauges: () => Record<string, number> = () => ({})) {}

  observe(operation: string, status: number, seconds: number): void {
    const key = `operation="${operation}",status_code="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let d = this.durations.get(operation);
    if (!d) this.durations.set(operation, (d = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) d.buckets[i]++;
    });
    d.sum += seconds;
    d.count++;
  }

  render(): string {
    const lines: string[] = [];
    const counter = (name: string, help: string, value: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    lines.push("# HELP activestore_requests_total Requests by operation and HTTP status.", "# TYPE activestore_requests_total counter");
    for (const [labels, n] of this.requests) lines.push(`activestore_requests_total{${labels}} ${n}`);
    lines.push(
      "# HELP activestore_request_duration_seconds Request durations by operation.",
      "# TYPE activestore_request_duration_seconds histogram",
    );
    for (const [op, d] of this.durations) {
      BUCKETS.forEach((b, i) => lines.push(`activestore_request_duration_seconds_bucket{operation="${op}",le="${b}"} ${d.buckets[i]}`));
      lines.push(`activestore_request_duration_seconds_bucket{operation="${op}",le="+Inf"} ${d.count}`);
      lines.push(`activestore_request_duration_seconds_sum{operation="${op}"} ${d.sum}`);
      lines.push(`activestore_request_duration_seconds_count{operation="${op}"} ${d.count}`);
    }
    counter("activestore_upstream_bytes_total", "Bytes fetched from upstream object stores.", this.upstreamBytes);
    counter("activestore_response_bytes_total", "Bytes of response bodies sent to clients.", this.responseBytes);
    counter("activestore_chunk_cache_hits_total", "Chunk cache hits.", this.cacheHits);
    counter("activestore_chunk_cache_misses_total", "Chunk cache misses.", this.cacheMisses);
    for (const [name, value] of Object.entries(this.gauges())) {
      lines.push(`# TYPE ${name} gauge`, `${name} ${value}`);
    }
    return lines.join("\n") + "\n";
  }
}
