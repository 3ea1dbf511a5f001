/**
 * `ratls attest` and `ratls token verify` as a shell user runs them (in-process main(), real
 * servers on loopback): exit 0 pass, 1 refused, 2 usage or connection error; the readable report
 * and --json; the token from `attest --json` verified again from an argument and from stdin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIo } from '../../src/cli/io.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { makeWorld, simulatedSource, type World } from '../client/helpers.ts';
import { runCli } from '../helpers/cli.ts';

let world: World;
let dir: string;
let root: string;
let srv: RunningRatlsServer;
let debugSrv: RunningRatlsServer;
let svc: AttestServiceHandle;

beforeAll(async () => {
  world = await makeWorld();
  root = join(world.dir, 'root.pem');
  dir = mkdtempSync(join(tmpdir(), 'ratls-attest-cli-'));
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'default.yaml'), 'version: 1\n');
  writeFileSync(join(dir, 'wrong-mrtd.yaml'), `version: 1\nmeasurements:\n  mrTd: ["${'cd'.repeat(48)}"]\n`);
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: join(dir, 'policies'), roots: [world.rootPem], offline: true, rateLimit: false });
  const serve = async (debug: boolean) =>
    startRatlsServer(validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' } }), {
      identitySource: await simulatedSource(world, { debug }),
      autoRotate: false,
    });
  srv = await serve(false);
  debugSrv = await serve(true);
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 200 });
  await debugSrv?.close({ drainTimeoutMs: 200 });
  await svc?.close();
  for (const d of [dir, world?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

const jwks = () => `${svc.url}/.well-known/jwks.json`;

/** `ratls ARGS` with `stdin` on standard input. */
async function withStdin(stdin: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => void (out += s), err: (s) => void (err += s), setExitCode: () => undefined, isTty: false, readStdin: async () => stdin };
  const code = await main(['node', 'ratls', ...args], io);
  return { code, out, err };
}

describe('ratls attest', () => {
  it('PASS, exit 0: the report says what was proved and how to pin the software', async () => {
    const r = await runCli('attest', srv.url, '--service', svc.url, '--root', root);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Attestation of https:\/\/127\.0\.0\.1:\d+\/ by the service http:\/\/127\.0\.0\.1:\d+\n/);
    expect(r.out).toMatch(/Verdict:\s+PASS: platform verified under a SIMULATED \/ non-Intel root \(TCB UpToDate\), but no software is pinned/);
    expect(r.out).toContain(`ratls attest ${srv.url} --service ${svc.url} --policy policy.yaml --root ${root}`);
    expect(r.out).toMatch(/Service:\s+affirming under its policy "default"/);
    expect(r.out).toMatch(/Freshness:\s+fresh: the evidence carries our nonce/);
    expect(r.out).toMatch(/MRTD\s+not pinned\s+[0-9a-f]{96}/);
  });

  it('--json gives the token and nonce, which ratls token verify accepts from an argument and from stdin', async () => {
    const r = await runCli('attest', srv.url, '--service', svc.url, '--root', root, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { ok: boolean; token: string; nonce: string; claims: { tdx_mrtd: string }; policyCheck: { verdict: string } };
    expect(j.ok).toBe(true);
    expect(j.policyCheck.verdict).toMatch(/^PASS/);
    const v = await runCli('token', 'verify', j.token, '--jwks', jwks(), '--nonce', j.nonce, '--allow-simulated');
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/Verdict:\s+VALID, and the service's verdict is affirming/);
    expect(v.out).toMatch(/Nonce:\s+eat_nonce is the nonce you gave/);
    expect(v.out).toMatch(/Issuer:\s+http:\/\/127\.0\.0\.1:\d+ \(required\)/);
    expect(v.out).toContain(j.claims.tdx_mrtd);
    const s = await withStdin(`${j.token}\n`, 'token', 'verify', '--jwks', jwks(), '--expect-nonce', j.nonce, '--allow-simulated', '--json');
    expect(s.code).toBe(0);
    expect(JSON.parse(s.out)).toMatchObject({ ok: true, nonceChecked: true, issuerChecked: svc.url, claims: { tdx_mrtd: j.claims.tdx_mrtd } });
  });

  it('refused, exit 1: a policy pinning another MRTD shows expected next to actual', async () => {
    const r = await runCli('attest', srv.url, '--service', svc.url, '--root', root, '--policy', join(dir, 'wrong-mrtd.yaml'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/Verdict:\s+REJECTED/);
    expect(r.out).toMatch(/MRTD\s+MISMATCH\s+[0-9a-f]{96}\n\s+expected\s+(cd){48}/);
    expect(r.out).toMatch(/MEASUREMENT_MISMATCH: MRTD is [0-9a-f]{96}, which is not one of the 1 value\(s\) the policy accepts/);
  });

  it('refused, exit 1: a DEBUG TD; its token is still a valid statement of the refusal', async () => {
    const r = await runCli('attest', debugSrv.url, '--service', svc.url, '--root', root, '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { ok: boolean; token: string; errors: Array<{ code: string }> };
    expect(j.errors.map((e) => e.code)).toEqual(['TD_DEBUG']);
    const v = await runCli('token', 'verify', j.token, '--jwks', jwks(), '--allow-simulated');
    expect(v.code).toBe(1);
    expect(v.out).toMatch(/Verdict:\s+VALID token, but the service REJECTED the evidence/);
    expect(v.out).toMatch(/Reasons:\n\s+TD_DEBUG: /);
    expect(v.out).toMatch(/DEBUG\s+true/);
  });

  it('exit 2 when a step cannot run, with the code', async () => {
    const down = await runCli('attest', srv.url, '--service', 'http://127.0.0.1:1', '--root', root);
    expect(down.code).toBe(2);
    expect(down.err).toMatch(/^ratls attest: CONNECTION_FAILED: Cannot reach the attestation service at http:\/\/127\.0\.0\.1:1/);
    const json = await runCli('attest', 'https://127.0.0.1:1', '--service', svc.url, '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, errors: [{ code: 'CONNECTION_FAILED' }] });
    expect((await runCli('attest', srv.url)).code).toBe(2); // --service is required
    expect((await runCli('attest', srv.url, '--service', 'http://attest.example')).err).toContain('TOKEN_KEYS_INSECURE');
  });
});

describe('ratls token verify', () => {
  let token: string;
  let nonce: string;
  beforeAll(async () => {
    const j = JSON.parse((await runCli('attest', srv.url, '--service', svc.url, '--root', root, '--json')).out) as { token: string; nonce: string };
    ({ token, nonce } = j);
  });

  it.each([
    ['a simulated token without --allow-simulated', () => ['--nonce', nonce], 'SIMULATED_EVIDENCE'],
    ['another nonce', () => ['--nonce', '00'.repeat(32), '--allow-simulated'], 'NONCE_MISMATCH'],
    ['another issuer', () => ['--issuer', 'https://attest.example', '--allow-simulated'], 'TOKEN_CLAIM_MISMATCH'],
  ])('refuses %s: exit 1 with the code', async (_name, extra, code) => {
    const r = await runCli('token', 'verify', token, '--jwks', jwks(), ...extra());
    expect(r.code).toBe(1);
    expect(r.err).toContain(`ratls token verify: ${code}: `);
  });

  it('refuses a token with a changed claim (signature) and garbage, exit 1', async () => {
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    claims.tdx_mrtd = '00'.repeat(48);
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    const r = await runCli('token', 'verify', forged, '--jwks', jwks(), '--allow-simulated', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, errors: [{ code: 'TOKEN_SIGNATURE_INVALID' }] });
    expect((await runCli('token', 'verify', 'not-a-token', '--jwks', jwks())).err).toContain('TOKEN_INVALID');
  });

  it('exit 2 for what is not the token’s fault: unreachable or insecure JWKS, bad nonce hex, no token', async () => {
    expect((await runCli('token', 'verify', token, '--jwks', 'http://127.0.0.1:1/.well-known/jwks.json')).code).toBe(2);
    const insecure = await runCli('token', 'verify', token, '--jwks', 'http://attest.example/.well-known/jwks.json');
    expect(insecure.code).toBe(2);
    expect(insecure.err).toContain('TOKEN_KEYS_INSECURE');
    expect((await runCli('token', 'verify', token, '--jwks', jwks(), '--nonce', 'xyz')).code).toBe(2);
    expect((await withStdin('  \n', 'token', 'verify', '--jwks', jwks())).code).toBe(2);
  });
});
