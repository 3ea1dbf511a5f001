/** attestedFetch: fetch that only talks to servers passing attestation under a policy. */
import type { ClientPolicy } from '../verify/policy-file.ts';
import { createAttestedDispatcher, fetchWithDispatcher, type AttestedDispatcher, type AttestedDispatcherOptions, type AttestedFetch } from './dispatcher.ts';

// One dispatcher per policy object, so connections (already attested) are reused across calls.
const dispatchers = new WeakMap<ClientPolicy, AttestedDispatcher>();

/**
 * fetch(url, init) through an attested connection. The first request on each new connection is
 * preceded by attestation (and by the nonce round trip when policy.freshness.requireNonce).
 * @throws AttestationError when the server is refused (never a generic "fetch failed").
 */
export function attestedFetch(url: string | URL, init: RequestInit | undefined, policy: ClientPolicy): Promise<Response> {
  let d = dispatchers.get(policy);
  if (!d) {
    d = createAttestedDispatcher(policy);
    dispatchers.set(policy, d);
  }
  return fetchWithDispatcher(d)(url, init);
}

/**
 * A standalone fetch function with its own dispatcher, for libraries that take `fetch`
 * (openai: `new OpenAI({ fetch })`, ollama: `new Ollama({ fetch })`). Call `.close()` when done.
 */
export function createAttestedFetch(
  policy: ClientPolicy,
  opts?: AttestedDispatcherOptions,
): AttestedFetch & { dispatcher: AttestedDispatcher; close(): Promise<void> } {
  const dispatcher = createAttestedDispatcher(policy, opts);
  const f = fetchWithDispatcher(dispatcher) as AttestedFetch & { dispatcher: AttestedDispatcher; close(): Promise<void> };
  f.dispatcher = dispatcher;
  f.close = () => dispatcher.close();
  return f;
}
