/**
 * Prometheus metrics of one proxy instance. Each server owns its own registry so several servers in
 * one process (tests, benches) do not collide.
 */
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export interface ProxyMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  duration: Histogram<'route'>;
  upstreamErrors: Counter<'route' | 'code'>;
  activeStreams: Gauge;
  activeWebsockets: Gauge;
  certExpiry: Gauge;
  rotations: Counter<'result'>;
  rejected: Counter<'reason'>;
  /**
   * Counts a proxied request in a plain number; the total moves into `requests` when the registry is
   * scraped. prom-client hashes and validates the label set on every `inc`, even on a bound child,
   * which the hot path does not need to pay.
   */
  countRequest(route: string, method: string, status: number): void;
  /**
   * Makes `ratls_active_streams` read this function at scrape time instead of counting per request;
   * with several upstream engines (one per listener) the gauge is the sum of their readings.
   */
  activeStreamsFrom(read: () => number): void;
}

interface Tally {
  route: string;
  method: string;
  status: string;
  pending: number;
}

/** Creates the registry and all metrics; `processMetrics` adds Node's default process metrics. */
export function createMetrics(processMetrics = true): ProxyMetrics {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry, prefix: 'ratls_' });
  const registers = [registry];
  // Keyed by route, method and status; all three come from small fixed sets (config routes, the
  // methods Node's parser accepts, three-digit statuses), so this stays small.
  const tallies = new Map<string, Tally>();
  const readActive: Array<() => number> = [];
  return {
    registry,
    requests: new Counter({
      name: 'ratls_http_requests_total',
      help: 'HTTP requests answered, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
      collect() {
        for (const t of tallies.values()) {
          if (t.pending === 0) continue;
          this.inc({ route: t.route, method: t.method, status: t.status }, t.pending);
          t.pending = 0;
        }
      },
    }),
    countRequest(route: string, method: string, status: number): void {
      const key = `${route}\n${method}\n${status}`;
      const t = tallies.get(key);
      if (t) t.pending++;
      else tallies.set(key, { route, method, status: String(status), pending: 1 });
    },
    activeStreamsFrom(read: () => number): void {
      readActive.push(read);
    },
    duration: new Histogram({
      name: 'ratls_http_request_duration_seconds',
      help: 'Time from request to end of response (includes whole streams)',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'ratls_upstream_errors_total',
      help: 'Failures reaching an upstream, by route and error code',
      labelNames: ['route', 'code'],
      registers,
    }),
    activeStreams: new Gauge({
      name: 'ratls_active_streams',
      help: 'Proxied HTTP requests in flight',
      registers,
      collect() {
        if (readActive.length > 0) this.set(readActive.reduce((sum, read) => sum + read(), 0));
      },
    }),
    activeWebsockets: new Gauge({ name: 'ratls_active_websockets', help: 'Open proxied WebSocket connections', registers }),
    certExpiry: new Gauge({ name: 'ratls_certificate_expiry_timestamp_seconds', help: 'notAfter of the certificate being served (Unix seconds)', registers }),
    rotations: new Counter({ name: 'ratls_certificate_rotations_total', help: 'Certificate rotations, by result', labelNames: ['result'], registers }),
    rejected: new Counter({
      name: 'ratls_rejected_requests_total',
      help: 'Requests refused by the proxy itself, by reason',
      labelNames: ['reason'],
      registers,
    }),
  };
}
