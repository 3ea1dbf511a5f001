/**
 * `npm run bench -- native [--runs N] [--rounds R] [--quote SUBSTRING]`
 *
 * Our verifier beside the native ones, on every manifest quote with collateral at its verification
 * time, in the same run: verifyQuote cold (caches cleared) and warm, Phala's dcap-qvl crate (Rust,
 * ring) and Google's go-tdx-guest (Go), both built by scripts/peers/build-native-verifiers.sh, and
 * @phala/dcap-qvl from npm (its wasm build). Each native verifier times N runs inside its own
 * process (start-up is never timed); the measurements are interleaved in R rounds so machine load
 * hits all alike. Medians; writes bench/results/native-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { clearVerifierCache, verifyQuote } from '../src/verify/dcap.ts';
import { splitSignedJson } from '../src/verify/signed-json.ts';
import { toHex } from '../src/core/bytes.ts';
import { nativeVerdict, runNative, type NativeResult, type NativeTool } from '../scripts/peers/native.ts';
import { requirePeers } from '../scripts/peers/pins.ts';
import { TESTDATA_DIR, collateralDirFor, loadCollateralDir, loadManifest, readTestFile } from '../tests/helpers/testdata.ts';
import { flag, median } from './stats.ts';

interface WasmQvl {
  verify(quote: Uint8Array, collateral: Record<string, string>, nowSecs: number): { status: string };
}

/** go-tdx-guest v0.3.1 refuses v5 quotes while parsing: that time says nothing about verification. */
const comparable = (tool: NativeTool, r: NativeResult): boolean => !(tool === 'go-tdx-guest' && /format not supported/.test(r.error ?? ''));

interface Row {
  id: string;
  verdicts: Record<string, string>;
  ms: { cold: number; warm: number; 'dcap-qvl': number | null; 'go-tdx-guest': number | null; 'dcap-qvl-wasm': number };
}

export async function run(args: string[]): Promise<void> {
  const paths = requirePeers(['native']);
  const runs = Number(flag(args, '--runs') ?? 200);
  const rounds = Math.max(1, Number(flag(args, '--rounds') ?? 5));
  const per = Math.max(1, Math.round(runs / rounds));
  const filter = flag(args, '--quote');
  const wasm = createRequire(import.meta.url)('@phala/dcap-qvl') as WasmQvl;
  const root = join(TESTDATA_DIR, 'intel', 'intel_sgx_root_ca.pem');
  const rows: Row[] = [];
  for (const m of loadManifest().quotes) {
    if (!m.collateral || !m.verification_time || (filter && !m.id.includes(filter))) continue;
    const quote = readTestFile(m.file);
    const collateral = loadCollateralDir(collateralDirFor(m.collateral.set));
    const now = new Date(m.verification_time.iso);
    const opts = { collateral, now, policy: { allowDebug: true, allowedTcbStatuses: ['UpToDate' as const, 'OutOfDate' as const] } };
    const tcb = splitSignedJson(collateral.tcbInfoJson, 'tcbInfo', 'TCB info');
    const qe = splitSignedJson(collateral.qeIdentityJson, 'enclaveIdentity', 'QE identity');
    const wasmCollateral = {
      pck_crl_issuer_chain: collateral.pckCrlIssuerChain,
      root_ca_crl: toHex(collateral.rootCaCrl),
      pck_crl: toHex(collateral.pckCrl),
      tcb_info_issuer_chain: collateral.tcbInfoIssuerChain,
      tcb_info: tcb.signedText,
      tcb_info_signature: toHex(tcb.signature),
      qe_identity_issuer_chain: collateral.qeIdentityIssuerChain,
      qe_identity: qe.signedText,
      qe_identity_signature: toHex(qe.signature),
    };
    const wasmOnce = (): string => {
      try {
        return wasm.verify(quote, wasmCollateral, Math.floor(now.getTime() / 1000)).status;
      } catch (err) {
        return (err instanceof Error ? err.message : String(err)).slice(0, 48);
      }
    };
    const input = { quoteFile: join(TESTDATA_DIR, m.file), collateralDir: collateralDirFor(m.collateral.set), at: now, rootPemFile: root, allowDebug: true };
    const t: Record<'cold' | 'warm' | 'dcap-qvl-wasm' | NativeTool, number[]> = { cold: [], warm: [], 'dcap-qvl-wasm': [], 'dcap-qvl': [], 'go-tdx-guest': [] };
    const verdicts: Record<string, string> = {};
    const usable: Record<NativeTool, boolean> = { 'dcap-qvl': true, 'go-tdx-guest': true };
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < per; i++) {
        clearVerifierCache();
        let s = performance.now();
        const res = await verifyQuote(quote, opts);
        t.cold.push(performance.now() - s);
        verdicts.ours = res.tcbStatus ?? (res.errors.some((e) => e.code === 'TCB_NOT_SUPPORTED') ? 'NO_TCB_LEVEL' : res.errors.map((e) => e.code).join(','));
        s = performance.now();
        await verifyQuote(quote, opts);
        t.warm.push(performance.now() - s);
        s = performance.now();
        verdicts['dcap-qvl-wasm'] = wasmOnce();
        t['dcap-qvl-wasm'].push(performance.now() - s);
      }
      for (const tool of ['dcap-qvl', 'go-tdx-guest'] as const) {
        const res = await runNative(tool, { ...input, runs: per });
        verdicts[tool] = nativeVerdict(res).slice(0, 60);
        usable[tool] = comparable(tool, res);
        t[tool].push(...res.timesNs.map((ns) => ns / 1e6));
      }
    }
    rows.push({
      id: m.id,
      verdicts,
      ms: {
        cold: median(t.cold),
        warm: median(t.warm),
        'dcap-qvl': usable['dcap-qvl'] ? median(t['dcap-qvl']) : null,
        'go-tdx-guest': usable['go-tdx-guest'] ? median(t['go-tdx-guest']) : null,
        'dcap-qvl-wasm': median(t['dcap-qvl-wasm']),
      },
    });
  }

  const cols = ['cold', 'warm', 'dcap-qvl', 'go-tdx-guest', 'dcap-qvl-wasm'] as const;
  const fmt = (n: number | null): string => (n === null ? 'n/a' : n.toFixed(3)).padStart(14);
  let out = `DCAP verification per quote, median ms of ${per * rounds} runs (${rounds} interleaved rounds); dcap-qvl ${paths.dcapQvlVersion} native, go-tdx-guest ${paths.goTdxGuestVersion}\n`;
  out += `${'quote'.padEnd(42)}${cols.map((c) => c.padStart(14)).join('')}   verdicts: ours | dcap-qvl | go-tdx-guest\n`;
  for (const r of rows) {
    out += `${r.id.padEnd(42)}${cols.map((c) => fmt(r.ms[c])).join('')}   ${r.verdicts.ours} | ${r.verdicts['dcap-qvl']} | ${r.verdicts['go-tdx-guest']}\n`;
  }
  const med = Object.fromEntries(cols.map((c) => [c, median(rows.map((r) => r.ms[c]).filter((x): x is number => x !== null))])) as Record<
    (typeof cols)[number],
    number
  >;
  out += `${'MEDIAN over quotes'.padEnd(42)}${cols.map((c) => fmt(med[c])).join('')}\n`;
  out += `ratio to our cold time: dcap-qvl ${(med['dcap-qvl'] / med.cold).toFixed(2)}x, go-tdx-guest ${(med['go-tdx-guest'] / med.cold).toFixed(2)}x, dcap-qvl wasm ${(med['dcap-qvl-wasm'] / med.cold).toFixed(2)}x (above 1: ours is faster)\n`;
  out += `n/a: go-tdx-guest ${paths.goTdxGuestVersion} does not parse v5 quotes (refused before any verification; not timed).\n`;
  process.stdout.write(out);

  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `native-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        runs: per * rounds,
        rounds,
        node: process.version,
        versions: { dcapQvl: paths.dcapQvlVersion, goTdxGuest: paths.goTdxGuestVersion },
        rows,
        median: med,
      },
      null,
      2,
    ),
  );
  process.stdout.write(`written ${file}\n`);
}
