/** The human start-up banner of `ratls serve` (stderr; the JSON logs keep stdout). */
import type { ServeConfig } from './config.ts';
import type { IdentityMeasurements, ServingIdentity } from './identity-source.ts';
import { formatSize } from './units.ts';

export interface BannerInput {
  url: string;
  port: number;
  config: ServeConfig;
  identity: ServingIdentity;
  measurements?: IdentityMeasurements;
  /** Path of the simulated root certificate, when simulated. */
  simRootPath?: string;
  demo: boolean;
}

/** Renders the banner as plain text lines. */
export function renderBanner(b: BannerInput): string {
  const id = b.identity;
  const sim = id.simulated;
  const L: string[] = [];
  L.push('');
  L.push(`ratls serve: attested TLS proxy listening on ${b.url}`);
  L.push(`  evidence provider  ${sim ? `SIMULATED (${id.providerName}) - NOT a real TDX attestation, for development only` : id.providerName}`);
  if (b.measurements) {
    L.push(`  MRTD               ${b.measurements.mrTd}`);
    for (const k of ['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const) L.push(`  ${k.toUpperCase()}              ${b.measurements[k]}`);
  }
  const rotateAtMs = id.notBefore.getTime() + (id.notAfter.getTime() - id.notBefore.getTime()) * b.config.tls.rotateAt;
  L.push(`  certificate sha256 ${id.fingerprintSha256}`);
  L.push(`  valid until        ${id.notAfter.toISOString()} (next rotation ${new Date(rotateAtMs).toISOString()})`);
  L.push(
    `  TLS                ${b.config.tls.minVersion === 'TLSv1.2' ? 'TLS 1.2 and 1.3' : 'TLS 1.3 only'}, body limit ${formatSize(b.config.limits.maxBodyBytes)}`,
  );
  for (const r of b.config.routes) {
    const notes = [r.stripPrefix ? 'prefix stripped' : '', r.rewriteHost ? 'Host rewritten' : '', r.blockOllamaAdmin ? 'admin routes blocked' : ''].filter(
      Boolean,
    );
    L.push(`  route ${r.prefix.padEnd(12)} -> ${r.target}${b.demo ? ' (built-in demo upstream)' : ''}${notes.length ? ` (${notes.join(', ')})` : ''}`);
  }
  L.push(`  control            ${b.url}.well-known/ratls/{evidence?nonce=HEX,certificate,collateral}  /healthz /readyz /metrics`);
  const verifyUrl = `https://localhost:${b.port}`;
  L.push('');
  L.push('Check it from another terminal:');
  L.push(`  ./bin/ratls verify ${verifyUrl}${sim && b.simRootPath ? ` --root ${b.simRootPath}` : ''}`);
  if (b.demo) L.push(`  curl -sk ${verifyUrl}/ollama/api/chat -d '{"model":"ratls-demo","messages":[{"role":"user","content":"hi"}]}'`);
  L.push('');
  return L.join('\n');
}
