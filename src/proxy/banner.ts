/** The human start-up banner of `ratls serve` (stderr; the JSON logs keep stdout). */
import type { ServeConfig } from './config.ts';
import type { IdentityMeasurements, ServingIdentity } from './identity-source.ts';
import { formatSize } from './units.ts';
import type { LoadedCredentials } from '../demo/credentials.ts';

/** What the banner says about the demo apps (`--demo`). */
export interface BannerDemo {
  webuiUrl: string;
  ollamaUrl: string;
  credentials: LoadedCredentials;
}

export interface BannerInput {
  url: string;
  port: number;
  config: ServeConfig;
  identity: ServingIdentity;
  measurements?: IdentityMeasurements;
  /** Path of the simulated root certificate, when simulated. */
  simRootPath?: string;
  demo?: BannerDemo;
  /** URL of the opt-in Ollama listener, when it runs. */
  ollamaListenerUrl?: string;
}

/** Routes that send requests to Ollama itself: its API has no authentication, so say so. */
export function routesToOllama(config: ServeConfig): string[] {
  return config.routes.filter((r) => r.target === config.upstreams.ollama || r.name === 'ollama' || (r.stripPrefix && r.rewriteHost)).map((r) => r.prefix);
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
    const what = b.demo && r.target === b.demo.webuiUrl ? ' (demo open-webui-shaped app)' : r.name === 'open-webui' ? ' (open-webui)' : '';
    L.push(`  route ${r.prefix.padEnd(12)} -> ${r.target}${what}${notes.length ? ` (${notes.join(', ')})` : ''}`);
  }
  for (const w of b.config.warnings) L.push(`  WARNING            ${w}`);
  const exposed = routesToOllama(b.config);
  if (b.ollamaListenerUrl && b.config.ollamaListener) {
    const admin = b.config.ollamaListener.blockAdmin ? 'admin routes blocked' : 'admin routes ALLOWED (ollamaListener.blockAdmin: false)';
    L.push(`  Ollama listener    ${b.ollamaListenerUrl} -> ${b.config.upstreams.ollama} (Bearer access token required, ${admin}, Host rewritten)`);
  }
  if (exposed.length > 0) {
    L.push(`  WARNING            route ${exposed.join(', ')} publishes Ollama's API, which has no authentication: anyone who reaches this port can use it`);
  } else {
    L.push(
      `  Ollama             ${b.config.upstreams.ollama}${b.demo ? ' (demo backend)' : ''}: ${b.ollamaListenerUrl ? 'not published on this listener' : 'not published'}; open-webui serves it under /ollama/ behind its login`,
    );
  }
  L.push(`  control            ${b.url}.well-known/ratls/{session?nonce=HEX,evidence?nonce=HEX,certificate,collateral}  /healthz /readyz /metrics`);
  const c = b.demo?.credentials;
  if (c) {
    const where = (f: string | undefined) => (f ? `   (also in ${f})` : '');
    L.push(`  demo login         ${c.credentials.email} / ${c.credentials.password}${where(c.files?.password)}`);
    L.push(`  demo API key       ${c.credentials.apiKey}${where(c.files?.apiKey)}`);
    if (c.warning) L.push(`  WARNING            demo credentials are not saved (${c.warning}); they change at the next start`);
  }
  const verifyUrl = `https://localhost:${b.port}`;
  L.push('');
  L.push('Check it from another terminal:');
  L.push(`  ./bin/ratls verify ${verifyUrl}${sim && b.simRootPath ? ` --root ${b.simRootPath}` : ''}`);
  if (c) {
    L.push(`  KEY=${c.files ? `$(cat ${c.files.apiKey})` : c.credentials.apiKey}`);
    L.push(
      `  curl -sk ${verifyUrl}/api/chat/completions -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"model":"ratls-demo:latest","stream":true,"messages":[{"role":"user","content":"hi"}]}'`,
    );
    L.push(`  ./bin/ratls connect --upstream ${verifyUrl}${sim && b.simRootPath ? ` --root ${b.simRootPath}` : ''} --listen 127.0.0.1:8080`);
    L.push(`  then open http://127.0.0.1:8080/ in a browser and sign in as ${c.credentials.email}`);
  }
  L.push('');
  return L.join('\n');
}
