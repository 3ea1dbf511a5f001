import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TESTDATA_DIR, collateralDirFor } from '../helpers/testdata.ts';

const BIN = fileURLToPath(new URL('../../bin/ratls', import.meta.url));

function ratls(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const quote = (f: string) => join(TESTDATA_DIR, 'quotes', f);

describe('ratls quote (spawned binary)', () => {
  it('verify --json: UpToDate quote exits 0 with exactly one JSON object', async () => {
    const r = await ratls([
      'quote',
      'verify',
      '--quote',
      quote('v4-b0c06f000000-dcapqvl.dat'),
      '--collateral',
      collateralDirFor('dcapqvl-b0c06f000000-2025-06'),
      '--at',
      '2025-07-19T10:00:34Z',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ ok: true, tcbStatus: 'UpToDate', advisoryIds: [], errors: [] });
    expect((out.quote as Record<string, unknown>).fmspc).toBe('b0c06f000000');
  }, 60_000);

  it('verify --json: OutOfDate is rejected (1) by default and accepted with --allow-status', async () => {
    const base = [
      'quote',
      'verify',
      '--quote',
      quote('v4-00806f050000-zkdcap.dat'),
      '--collateral',
      collateralDirFor('zkdcap-00806f050000-2025-01'),
      '--at',
      '2025-01-21T13:44:20Z',
      '--json',
    ];
    const [rejected, allowed] = await Promise.all([ratls(base), ratls([...base, '--allow-status', 'OutOfDate'])]);
    expect(rejected.code).toBe(1);
    const j = JSON.parse(rejected.stdout) as { tcbStatus: string; advisoryIds: string[]; errors: Array<{ code: string }> };
    expect(j.tcbStatus).toBe('OutOfDate');
    expect(j.advisoryIds).toEqual(['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986']);
    expect(j.errors.map((e) => e.code)).toEqual(['TCB_STATUS_NOT_ALLOWED']);
    expect(allowed.code).toBe(0);
  }, 60_000);

  it('verify (readable): TCB not supported prints checks and verdict, exits 1', async () => {
    const r = await ratls([
      'quote',
      'verify',
      '--quote',
      quote('v5-90c06f000000-dcapqvl-outdated.dat'),
      '--collateral',
      collateralDirFor('dcapqvl-90c06f000000-2026-02'),
      '--at',
      '2026-03-20T10:41:14Z',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('MRTD');
    expect(r.stdout).toMatch(/^TDX quote verification of \S+v5-90c06f000000-dcapqvl-outdated\.dat\n/);
    expect(r.stdout).toContain('ok   quote signature');
    expect(r.stdout).toContain('FAIL TCB level');
    expect(r.stdout).toMatch(/TCB status:\s+unknown\s+\(policy allows: UpToDate\)/);
    expect(r.stdout).toContain('Verified at:    2026-03-20T10:41:14.000Z');
    expect(r.stdout).toContain('TCB_NOT_SUPPORTED');
    expect(r.stdout).toMatch(/Verdict:\s+REJECTED/);
    // the same report layout as ratls verify: no TLS key binding or freshness rows for a bare quote
    expect(r.stdout).not.toContain('Key binding:');
  }, 60_000);

  it('usage errors and unreadable files exit 2; garbage quote exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cli-'));
    try {
      writeFileSync(join(dir, 'junk.bin'), 'not a quote '.repeat(10));
      const coll = collateralDirFor('dcapqvl-b0c06f000000-2025-06');
      const [missing, noColl, badAt, badStatus, junk] = await Promise.all([
        ratls(['quote', 'verify', '--quote', join(dir, 'nope'), '--collateral', coll, '--at', '2025-07-19T10:00:34Z']),
        ratls(['quote', 'verify', '--quote', quote('v4-b0c06f000000-dcapqvl.dat'), '--collateral', dir, '--at', '2025-07-19T10:00:34Z']),
        ratls(['quote', 'verify', '--quote', quote('v4-b0c06f000000-dcapqvl.dat'), '--collateral', coll, '--at', 'yesterday']),
        ratls(['quote', 'verify', '--quote', quote('v4-b0c06f000000-dcapqvl.dat'), '--collateral', coll, '--allow-status', 'Fine']),
        ratls(['quote', 'verify', '--quote', join(dir, 'junk.bin'), '--collateral', coll, '--at', '2025-07-19T10:00:34Z', '--json']),
      ]);
      expect(missing.code).toBe(2);
      expect(noColl.code).toBe(2);
      expect(noColl.stderr).toContain('tcb_info.json');
      expect(badAt.code).toBe(2);
      expect(badStatus.code).toBe(2);
      expect(junk.code).toBe(1);
      expect((JSON.parse(junk.stdout) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('QUOTE_UNSUPPORTED_VERSION');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('verify --policy: the policy file appraises the quote (measurement mismatch exits 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cli-'));
    try {
      const file = join(dir, 'policy.yaml');
      writeFileSync(file, `version: 1\ntrustedRoots: [intel]\ntcb:\n  allowedStatuses: [UpToDate]\nmeasurements:\n  mrTd: ["${'ab'.repeat(48)}"]\n`);
      const r = await ratls([
        'quote',
        'verify',
        '--quote',
        quote('v4-b0c06f000000-dcapqvl.dat'),
        '--collateral',
        collateralDirFor('dcapqvl-b0c06f000000-2025-06'),
        '--at',
        '2025-07-19T10:00:34Z',
        '--policy',
        file,
        '--json',
      ]);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as { tcbStatus: string; errors: Array<{ code: string }> };
      expect(j.tcbStatus).toBe('UpToDate');
      expect(j.errors.map((e) => e.code)).toEqual(['MEASUREMENT_MISMATCH']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('inspect prints fields; --json gives summary and PCK info', async () => {
    const [text, json] = await Promise.all([
      ratls(['quote', 'inspect', '--quote', quote('v5-aliyun-90c06f000000-trustee.dat')]),
      ratls(['quote', 'inspect', '--quote', quote('v5-aliyun-90c06f000000-trustee.dat'), '--json']),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('MRSERVICETD');
    expect(text.stdout).toContain('dfba221b48a22af8511542ee796603f37382800840dcd978703909bf8e64d4c8a1e9de86e7c9638bfcba422f3886400a');
    expect(json.code).toBe(0);
    const j = JSON.parse(json.stdout) as { quote: Record<string, unknown>; pck: Record<string, unknown> };
    expect(j.quote.version).toBe(5);
    expect(j.quote.bodyType).toBe(3);
    expect(j.pck).toMatchObject({ fmspc: '90c06f000000', pckCa: 'platform', pceSvn: 13 });
  }, 60_000);
  it('verify: hostile collateral on disk (duplicate key inside the signed TCB info, --allow-status Revoked) is rejected with exit 1', async () => {
    const { cpSync, readFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'ratls-hostile-'));
    try {
      cpSync(collateralDirFor('dcapqvl-b0c06f000000-2025-06'), dir, { recursive: true });
      const text = readFileSync(join(dir, 'tcb_info.json'), 'utf8');
      writeFileSync(join(dir, 'tcb_info.json'), text.replace('"tcbInfo":{', '"tcbInfo":{"fmspc":"000000000000",'));
      const r = await ratls([
        'quote',
        'verify',
        '--quote',
        quote('v4-b0c06f000000-dcapqvl.dat'),
        '--collateral',
        dir,
        '--at',
        '2025-07-19T10:00:34Z',
        '--json',
        '--allow-status',
        'Revoked',
      ]);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as { ok: boolean; errors: Array<{ code: string; message: string }> };
      expect(j.ok).toBe(false);
      expect(j.errors.map((e) => e.code)).toContain('COLLATERAL_MALFORMED');
      expect(j.errors[0]!.message).toMatch(/appears twice/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
