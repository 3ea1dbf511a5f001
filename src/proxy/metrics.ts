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
  /** Evidence requests and single quotes waiting for the quoter. */
  evidenceQueueDepth: Gauge;
  /** Sessions covered by each batch quote. */
  evidenceBatchSize: Histogram;
  /** Time each quote took, by kind (batch: session evidence; single: nonce evidence). */
  evidenceQuoteSeconds: Histogram<'kind'>;
  /** Time a session evidence request waited from arrival to its evidence. */
  evidenceWaitSeconds: Histogram;
  /** Evidence requests refused at once (load shedding), by reason: queue, peer, connection. */
  evidenceShed: Counter<'reason'>;
  /** Evidence requests answered, by kind (session, nonce, certificate) and result (ok, busy, refused, aborted, error). */
  evidenceRequests: Counter<'kind' | 'result'>;
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
    evidenceQueueDepth: new Gauge({
      name: 'ratls_evidence_queue_depth',
      help: 'Session evidence requests and single quotes waiting for the quoter',
      registers,
    }),
    evidenceBatchSize: new Histogram({
      name: 'ratls_evidence_batch_size',
      help: 'Sessions covered by one batch quote',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers,
    }),
    evidenceQuoteSeconds: new Histogram({
      name: 'ratls_evidence_quote_duration_seconds',
      help: 'Time one quote took, by kind (batch: session evidence; single: nonce evidence)',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 5],
      registers,
    }),
    evidenceWaitSeconds: new Histogram({
      name: 'ratls_evidence_wait_seconds',
      help: 'Time a session evidence request waited from arrival to its evidence',
      buckets: [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 5],
      registers,
    }),
    evidenceShed: new Counter({
      name: 'ratls_evidence_shed_total',
      help: 'Evidence requests refused at once (503/429), by reason: queue full, per-peer cap, one already waiting on the connection',
      labelNames: ['reason'],
      registers,
    }),
    evidenceRequests: new Counter({
      name: 'ratls_evidence_requests_total',
      help: 'Evidence requests answered, by kind (session, nonce, certificate) and result (ok, busy, refused, aborted, error)',
      labelNames: ['kind', 'result'],
      registers,
    }),
  };
}
