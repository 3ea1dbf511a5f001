/**
 * `npm run bench -- verify [--runs N] [--quote SUBSTRING]`
 *
 * Time per quote of verifyQuote (collateral in memory) against @phala/dcap-qvl on the same quotes
 * in the same process: cold (every cache cleared before each run) and warm (same collateral and
 * chains already verified). Reports medians; writes bench/results/verify-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { clearVerifierCache, verifyQuote } from '../src/verify/dcap.ts';
import { splitSignedJson } from '../src/verify/signed-json.ts';
import { toHex } from '../src/core/bytes.ts';
import type { Collateral } from '../src/core/types.ts';
import { collateralDirFor, loadCollateralDir, loadManifest, readTestFile } from '../tests/helpers/testdata.ts';
import { flag, median } from './stats.ts';

interface DcapQvlCollateral {
  pck_crl_issuer_chain: string;
  root_ca_crl: string;
  pck_crl: string;
  tcb_info_issuer_chain: string;
  tcb_info: string;
  tcb_info_signature: string;
  qe_identity_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string;
}
interface DcapQvl {
  verify(quote: Uint8Array, collateral: DcapQvlCollateral, nowSecs: number): { status: string; advisory_ids: string[] };
}

/** Our seven-file collateral in dcap-qvl's shape (same signed bytes). */
function toDcapQvl(c: Collateral): DcapQvlCollateral {
  const tcb = splitSignedJson(c.tcbInfoJson, 'tcbInfo', 'TCB info');
  const qe = splitSignedJson(c.qeIdentityJson, 'enclaveIdentity', 'QE identity');
  return {
    pck_crl_issuer_chain: c.pckCrlIssuerChain,
    root_ca_crl: toHex(c.rootCaCrl),
    pck_crl: toHex(c.pckCrl),
    tcb_info_issuer_chain: c.tcbInfoIssuerChain,
    tcb_info: tcb.signedText,
    tcb_info_signature: toHex(tcb.signature),
    qe_identity_issuer_chain: c.qeIdentityIssuerChain,
    qe_identity: qe.signedText,
    qe_identity_signature: toHex(qe.signature),
  };
}

interface Row {
  id: string;
  ours: string;
  dcapQvl: string;
  coldMs: number;
  warmMs: number;
  dcapQvlMs: number;
}

export async function run(args: string[]): Promise<void> {
  const runs = Number(flag(args, '--runs') ?? 200);
  const filter = flag(args, '--quote');
  const qvl = createRequire(import.meta.url)('@phala/dcap-qvl') as DcapQvl;
  const rows: Row[] = [];
  for (const m of loadManifest().quotes) {
    if (!m.collateral || !m.verification_time || (filter && !m.id.includes(filter))) continue;
    const quote = readTestFile(m.file);
    const collateral = loadCollateralDir(collateralDirFor(m.collateral.set));
    const theirs = toDcapQvl(collateral);
    const now = new Date(m.verification_time.iso);
    const nowSecs = Math.floor(now.getTime() / 1000);
    const opts = { collateral, now, policy: { allowDebug: true, allowedTcbStatuses: ['UpToDate' as const, 'OutOfDate' as const] } };

    const qvlOnce = (): string => {
      try {
        const r = qvl.verify(quote, theirs, nowSecs);
        return r.status;
      } catch (err) {
        return `error: ${err instanceof Error ? err.message : String(err)}`.slice(0, 60);
      }
    };
    // Interleave the three measurements so machine load affects them alike.
    const cold: number[] = [];
    const warm: number[] = [];
    const other: number[] = [];
    for (let i = 0; i < 10; i++) {
      clearVerifierCache();
      await verifyQuote(quote, opts);
      qvlOnce();
    }
    let theirVerdict = '';
    let ourVerdict = '';
    for (let i = 0; i < runs; i++) {
      clearVerifierCache();
      let t = performance.now();
      const r = await verifyQuote(quote, opts);
      cold.push(performance.now() - t);
      ourVerdict = r.tcbStatus ?? r.errors.map((e) => e.code).join(',');
      t = performance.now();
      await verifyQuote(quote, opts);
      warm.push(performance.now() - t);
      t = performance.now();
      theirVerdict = qvlOnce();
      other.push(performance.now() - t);
    }
    rows.push({ id: m.id, ours: ourVerdict, dcapQvl: theirVerdict, coldMs: median(cold), warmMs: median(warm), dcapQvlMs: median(other) });
  }

  const fmt = (n: number): string => n.toFixed(3).padStart(8);
  let out = `verifyQuote vs @phala/dcap-qvl, median of ${runs} runs per quote (ms)\n`;
  out += `${'quote'.padEnd(44)} ${'cold'.padStart(8)} ${'warm'.padStart(8)} ${'dcap-qvl'.padStart(8)} ${'x cold'.padStart(7)}  verdicts (ours | dcap-qvl)\n`;
  for (const r of rows) {
    out += `${r.id.padEnd(44)} ${fmt(r.coldMs)} ${fmt(r.warmMs)} ${fmt(r.dcapQvlMs)} ${(r.dcapQvlMs / r.coldMs).toFixed(1).padStart(6)}x  ${r.ours} | ${r.dcapQvl}\n`;
  }
  const mc = median(rows.map((r) => r.coldMs));
  const mw = median(rows.map((r) => r.warmMs));
  const mq = median(rows.map((r) => r.dcapQvlMs));
  out += `${'MEDIAN over quotes'.padEnd(44)} ${fmt(mc)} ${fmt(mw)} ${fmt(mq)} ${(mq / mc).toFixed(1).padStart(6)}x  (warm: ${(mq / mw).toFixed(1)}x)\n`;
  process.stdout.write(out);

  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `verify-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ runs, node: process.version, rows, median: { coldMs: mc, warmMs: mw, dcapQvlMs: mq } }, null, 2));
  process.stdout.write(`written ${file}\n`);
}
