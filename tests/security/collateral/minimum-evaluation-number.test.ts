/**
 * Collateral rollback: a host can feed its TD (which staples it) or a cache an older TCB info that
 * Intel signed before a TCB recovery and that has not reached nextUpdate yet. A policy can demand a
 * minimum tcbEvaluationDataNumber; older collateral is then skipped, and refused if nothing newer
 * exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyRatlsCertificate } from '../../../src/ratls/verify-cert.ts';
import { parsePolicy, policyToYaml } from '../../../src/verify/policy-file.ts';
import { collateralEvaluationDataNumber } from '../../../src/collateral/inspect.ts';
import { startAttestService, type AttestServiceHandle } from '../../../src/service/server.ts';
import { loadCollateralDir, collateralDirFor, readTestFile, TESTDATA_DIR } from '../../helpers/testdata.ts';
import { makeIdentity, makeWorld, type World } from '../../client/helpers.ts';
import type { RatlsIdentity } from '../../../src/ratls/identity.ts';

let world: World;
let id: RatlsIdentity;

beforeAll(async () => {
  world = await makeWorld();
  id = await makeIdentity(world);
});

describe('tcb.minEvaluationDataNumber', () => {
  it('policy files accept a whole number and round-trip it; anything else is invalid', () => {
    const p = parsePolicy('tcb:\n  minEvaluationDataNumber: 17\n');
    expect(p.appraisal.minTcbEvaluationDataNumber).toBe(17);
    expect(parsePolicy(policyToYaml(p)).appraisal.minTcbEvaluationDataNumber).toBe(17);
    for (const bad of ['0', '"17"', '1.5', '-3']) {
      expect(() => parsePolicy(`tcb:\n  minEvaluationDataNumber: ${bad}\n`)).toThrow(/minEvaluationDataNumber/);
    }
  });

  it('the RA-TLS verifier refuses stapled collateral below the minimum and nothing newer exists', async () => {
    const base = { now: new Date(), trustedRoots: [world.rootPem] };
    const ok = await verifyRatlsCertificate(id.certDer, { ...base, policy: { minTcbEvaluationDataNumber: 17 } });
    expect(ok.errors).toEqual([]);
    const old = await verifyRatlsCertificate(id.certDer, { ...base, policy: { minTcbEvaluationDataNumber: 18 } });
    expect(old.ok).toBe(false);
    expect(old.errors.map((e) => e.code)).toContain('TCB_EVALUATION_TOO_OLD');
  });

  it('reads the lower of the TCB info and QE identity numbers; unreadable counts as too old', () => {
    const c = loadCollateralDir(collateralDirFor('dcapqvl-b0c06f000000-2025-06'));
    expect(collateralEvaluationDataNumber(c)).toBe(17);
    const qe = JSON.parse(c.qeIdentityJson) as { enclaveIdentity: { tcbEvaluationDataNumber: unknown } };
    qe.enclaveIdentity.tcbEvaluationDataNumber = 16;
    expect(collateralEvaluationDataNumber({ ...c, qeIdentityJson: JSON.stringify(qe) })).toBe(16);
    qe.enclaveIdentity.tcbEvaluationDataNumber = '99';
    expect(collateralEvaluationDataNumber({ ...c, qeIdentityJson: JSON.stringify(qe) })).toBeUndefined();
  });
});

describe('attestation service with a minimum', () => {
  let dir: string;
  let svc: AttestServiceHandle;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratls-sec-eval-'));
    const pol = join(dir, 'policies');
    mkdirSync(pol);
    writeFileSync(join(pol, 'default.yaml'), 'tcb:\n  minEvaluationDataNumber: 17\n');
    writeFileSync(join(pol, 'after-recovery.yaml'), 'tcb:\n  minEvaluationDataNumber: 18\n');
    svc = await startAttestService({
      keyDir: join(dir, 'keys'),
      policiesDir: pol,
      collateralDirs: [join(TESTDATA_DIR, 'collateral')],
      offline: true,
      rateLimit: false,
      verifyAt: () => new Date('2025-07-19T10:00:34Z'),
    });
  });
  afterAll(async () => {
    await svc?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a genuine quote passes at 17 and is a signed failure at 18', async () => {
    const quote = Buffer.from(readTestFile('quotes/v4-b0c06f000000-dcapqvl.dat')).toString('base64');
    const post = async (policy: string) =>
      (await (
        await fetch(`${svc.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ quote, policy }) })
      ).json()) as {
        result: { ok: boolean; errors: Array<{ code: string }> };
      };
    expect((await post('default')).result.ok).toBe(true);
    const r = await post('after-recovery');
    expect(r.result.ok).toBe(false);
    expect(r.result.errors.map((e) => e.code)).toContain('TCB_EVALUATION_TOO_OLD');
    const pols = (await (await fetch(`${svc.url}/v1/policies`)).json()) as { policies: Array<{ name: string; minTcbEvaluationDataNumber?: number }> };
    expect(pols.policies.find((p) => p.name === 'after-recovery')?.minTcbEvaluationDataNumber).toBe(18);
  });
});
