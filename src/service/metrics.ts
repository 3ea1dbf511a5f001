/** Prometheus metrics of the attestation service, in a registry of its own (several services per process in tests). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's metric handles. */
export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'route' | 'status'>;
  verdicts: Counter<'policy' | 'verdict' | 'tcb_status'>;
  rejections: Counter<'code'>;
  duration: Histogram<'evidence'>;
}

/** Creates a fresh registry; `defaults` adds Node process metrics (off in tests to save time). */
export function createServiceMetrics(defaults = false): ServiceMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'ratls_attest_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    verdicts: new Counter({
      name: 'ratls_attest_verdicts_total',
      help: 'Signed attestation results by policy, verdict and TCB status',
      labelNames: ['policy', 'verdict', 'tcb_status'],
      registers: [registry],
    }),
    rejections: new Counter({
      name: 'ratls_attest_errors_total',
      help: 'Error codes in responses (4xx and failed verdicts)',
      labelNames: ['code'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'ratls_attest_verify_seconds',
      help: 'Time to verify evidence and sign the result',
      labelNames: ['evidence'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
