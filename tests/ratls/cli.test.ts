import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';
import { encodeClaims } from '../../src/ratls/claims.ts';
import { encodeEvidence, OID_RATLS_EVIDENCE } from '../../src/ratls/extension.ts';
import { collateralDirFor, loadManifest, readTestFile } from '../helpers/testdata.ts';
import { runCli } from '../helpers/cli.ts';

const run = runCli;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ratls sim init / cert issue / cert verify', () => {
  it('runs the whole simulated flow', async () => {
    const w = join(dir, 'world');
    const mrtd = 'ab'.repeat(48);
    const init = await run('sim', 'init', '--dir', w, '--mrtd', mrtd);
    expect(init.code).toBe(0);
    expect(init.out).toMatch(/Created SIMULATED TDX world/);
    expect(JSON.parse(await readFile(join(w, 'measurements.json'), 'utf8'))).toEqual({ mrTd: mrtd });

    const cert = join(dir, 'c.pem');
    const key = join(dir, 'k.pem');
    const issue = await run('cert', 'issue', '--simulate', '--sim-dir', w, '--out-cert', cert, '--out-key', key, '--host', 'localhost', '--host', '127.0.0.1');
    expect(issue.code).toBe(0);
    expect(issue.out).toMatch(/Issued SIMULATED RA-TLS certificate/);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect(await readFile(key, 'utf8')).toMatch(/BEGIN PRIVATE KEY/);

    const ok = await run('cert', 'verify', '--cert', cert, '--root', join(w, 'root.pem'), '--json');
    expect(ok.code).toBe(0);
    const r = JSON.parse(ok.out) as { ok: boolean; ratls: unknown; quote: { mrTd: string }; nonIntelRoot: boolean };
    expect(r.ok).toBe(true);
    expect(r.ratls).toEqual({ profile: 'ccc', pubkeyHashAlg: 'SHA-256', nonce: null });
    expect(r.quote.mrTd).toBe(mrtd);
    expect(r.nonIntelRoot).toBe(true);

    const text = await run('cert', 'verify', '--cert', cert, '--root', join(w, 'root.pem'));
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/SIMULATED/);
    // one report style with ratls verify: verdict, what was proved, how to pin
    expect(text.out).toMatch(/Verdict:\s+PASS: .*no software is pinned: any TD on it passes/);
    expect(text.out).toContain(`Pin it:         ratls policy from --cert ${cert} --root ${join(w, 'root.pem')} --out policy.yaml`);
    expect(text.out).toMatch(new RegExp(`MRTD\\s+not pinned\\s+${mrtd}`));
    const pinned = join(w, 'pinned.yaml');
    expect((await run('policy', 'from', '--cert', cert, '--root', join(w, 'root.pem'), '--out', pinned)).code).toBe(0);
    const withPolicy = await run('cert', 'verify', '--cert', cert, '--policy', pinned);
    expect(withPolicy.code).toBe(0);
    expect(withPolicy.out).toMatch(/and the TD matches the pinned MRTD/);
    expect(withPolicy.out).toMatch(new RegExp(`MRTD\\s+matches\\s+${mrtd}`));
    const json = JSON.parse((await run('cert', 'verify', '--cert', cert, '--policy', pinned, '--json')).out) as { policyCheck: { softwarePinned: boolean } };
    expect(json.policyCheck.softwarePinned).toBe(true);

    const untrusted = await run('cert', 'verify', '--cert', cert, '--json');
    expect(untrusted.code).toBe(1);
    expect((JSON.parse(untrusted.out) as { errors: Array<{ code: string }> }).errors.map((e) => e.code)).toContain('PCK_CHAIN_UNTRUSTED');

    const later = await run(
      'cert',
      'verify',
      '--cert',
      cert,
      '--root',
      join(w, 'root.pem'),
      '--at',
      new Date(Date.now() + 2 * 86400_000).toISOString(),
      '--json',
    );
    expect(later.code).toBe(1);
    expect(later.out).toMatch(/CERT_EXPIRED/);
  });

  it('refuses to issue without TDX unless --simulate, and reports usage errors with exit 2', async () => {
    const noTdx = await run('cert', 'issue', '--configfs-root', join(dir, 'no-tsm'), '--out-cert', join(dir, 'x.pem'));
    expect(noTdx.code).toBe(2);
    expect(noTdx.err).toMatch(/EVIDENCE_PROVIDER_UNAVAILABLE.*--simulate/);
    expect((await run('cert', 'verify', '--cert', join(dir, 'missing.pem'))).code).toBe(2);
    expect((await run('cert', 'verify', '--cert', join(dir, 'c.pem'), '--at', 'yesterday')).code).toBe(2);
    expect((await run('sim', 'init', '--dir', join(dir, 'bad'), '--mrtd', 'xyz')).code).toBe(2);
    await expect(stat(join(dir, 'bad', 'root.key'))).rejects.toThrow();
  });

  it('cert verify explains why a real Intel quote wrapped in a certificate is refused', async () => {
    const q = loadManifest().quotes.find((m) => m.id === 'v4-b0c06f000000-dcapqvl.dat')!;
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
    const ev = encodeEvidence(readTestFile(q.file), await encodeClaims({ spkiDer: spki }));
    const at = new Date(q.verification_time!.iso);
    const c = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=transplanted',
      notBefore: new Date(at.getTime() - 3600_000),
      notAfter: new Date(at.getTime() + 3600_000),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.Extension(OID_RATLS_EVIDENCE, false, ev.slice().buffer)],
    });
    const f = join(dir, 'transplanted.pem');
    await writeFile(f, c.toString('pem'));
    const r = await run('cert', 'verify', '--cert', f, '--collateral', collateralDirFor(q.collateral!.set), '--at', q.verification_time!.iso);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/REPORTDATA_MISMATCH: .*not produced for this certificate/);
    expect(r.out).toMatch(/ok {3}PCK chain signatures: Intel SGX PCK Certificate <- Intel SGX PCK Platform CA <- Intel SGX Root CA/);
    expect(r.out).toMatch(/TCB status:\s+UpToDate/);
    expect(r.out).toMatch(/^RA-TLS certificate verification of \S+transplanted\.pem\n\s+Verdict:\s+REJECTED/);
  });
});
