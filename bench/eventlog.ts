/**
 * `npm run bench -- eventlog [--runs N] [--models M]`
 *
 * Cost of the event-log work a client adds to a verification, interleaved in one process so load
 * affects all cases alike, reported as medians and as ratios to a baseline in the same run:
 *
 * - real CCEL log (GCP COS 113, 43 events, go-tdx-guest's): the server reading the whole area; parse +
 *   replay into RTMR0-2 of the log as served; the whole boot appraisal (named events, digests
 *   recomputed from data, compared with the quote);
 * - runtime log with M models (default 100): building it (the server's side), parse + replay,
 *   and the whole appraisal with an allowed-models policy of M pins;
 * - baselines: `verifyQuote` of the same COS quote with warm caches (what a client pays anyway),
 *   and a replay of the same digests with node:crypto (how much WebCrypto's async calls cost).
 *
 * Writes bench/results/eventlog-<time>.json.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseTcgLog, sha384Of } from '../src/eventlog/tcg.ts';
import { replayTcgEvents } from '../src/eventlog/replay.ts';
import { appraiseWorkload } from '../src/eventlog/appraise.ts';
import { RuntimeLogBuilder, parseRuntimeLog, runtimeReplayValues, type RuntimeEvent } from '../src/eventlog/runtime.ts';
import { verifyQuote } from '../src/verify/dcap.ts';
import { parseQuote } from '../src/quote/parse.ts';
import { toHex } from '../src/core/bytes.ts';
import { collateralDirFor, loadCollateralDir, loadManifest, readTestFile } from '../tests/helpers/testdata.ts';
import { flag, median } from './stats.ts';

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!;
}

function runtimeEvents(models: number): RuntimeEvent[] {
  const events: RuntimeEvent[] = [
    { kind: 'proxy', version: '0.1.0', configDigest: 'c'.repeat(96) },
    { kind: 'open-webui', version: '0.6.5' },
    { kind: 'ollama', version: '0.17.7' },
  ];
  for (let i = 0; i < models; i++) {
    events.push({
      kind: 'model-added',
      name: `model-${i}:latest`,
      digest: createHash('sha256').update(`model ${i}`).digest('hex'),
      size: 1_000_000_000 + i,
      format: 'gguf',
      family: 'llama',
      families: ['llama'],
      parameterSize: '8.0B',
      quantization: 'Q4_K_M',
    });
  }
  return events;
}

export async function run(args: string[]): Promise<void> {
  const runs = Number(flag(args, '--runs') ?? 200);
  const modelCount = Number(flag(args, '--models') ?? 100);
  const area = new Uint8Array(readFileSync(fileURLToPath(new URL('../tests/fixtures/eventlog/gcp-cos113-ccel-data.bin', import.meta.url))));
  // what the server serves and clients replay: the area up to its last event (the 0xFF fill dropped)
  const ccel = area.slice(0, parseTcgLog(area).usedBytes);
  const m = loadManifest().quotes.find((q) => q.id.startsWith('v4-gcp-cos113'))!;
  const quote = readTestFile(m.file);
  const collateral = loadCollateralDir(collateralDirFor(m.collateral!.set));
  const now = new Date(m.verification_time!.iso);
  const b = parseQuote(quote).body;
  const rtmrs: [string, string, string, string] = [toHex(b.rtmr0), toHex(b.rtmr1), toHex(b.rtmr2), toHex(b.rtmr3)];
  const qopts = { collateral, now, policy: { allowedTcbStatuses: ['UpToDate' as const, 'OutOfDate' as const], allowDebug: true } };

  const events = runtimeEvents(modelCount);
  const builder = new RuntimeLogBuilder();
  for (const e of events) await builder.append(e);
  const runtimeLog = builder.bytes();
  const value = toHex(builder.replayValue);
  const allowed = events.filter((e) => e.kind === 'model-added').map((e) => ({ name: (e as { name: string }).name, digest: (e as { digest: string }).digest }));
  const digests = parseTcgLog(ccel)
    .events.filter((e) => e.eventType !== 3)
    .map((e) => ({ mr: e.mrIndex, d: sha384Of(e)! }));

  const cases: Record<string, () => Promise<unknown>> = {
    'baseline: verifyQuote, warm caches': () => verifyQuote(quote, qopts),
    'baseline: CCEL replay with node:crypto': async () => {
      const regs = [0, 1, 2, 3].map(() => Buffer.alloc(48));
      for (const { mr, d } of digests)
        regs[mr - 1] = createHash('sha384')
          .update(regs[mr - 1]!)
          .update(d)
          .digest();
      return regs;
    },
    'CCEL: server reads the whole 256 KiB area': async () => parseTcgLog(area),
    'CCEL: parse + replay (as served)': async () => replayTcgEvents(parseTcgLog(ccel).events),
    'CCEL: full boot appraisal vs quote': () => appraiseWorkload({ rtmrs, evidence: [], bootLog: ccel }),
    [`runtime log, ${modelCount} models: build`]: async () => {
      const x = new RuntimeLogBuilder();
      for (const e of events) await x.append(e);
      return x.bytes();
    },
    [`runtime log, ${modelCount} models: parse + replay`]: async () => {
      const l = await parseRuntimeLog(runtimeLog);
      return runtimeReplayValues(l.events);
    },
    [`runtime log, ${modelCount} models: full appraisal + policy`]: () =>
      appraiseWorkload({ rtmrs: ['', '', '', value], evidence: [{ source: 'certificate', rtmr3: value }], runtimeLog, policy: { allowedModels: allowed } }),
  };
  // sanity: every case does what it claims
  const boot = await appraiseWorkload({ rtmrs, evidence: [], bootLog: ccel });
  const rt = await appraiseWorkload({
    rtmrs: ['', '', '', value],
    evidence: [{ source: 'certificate', rtmr3: value }],
    runtimeLog,
    policy: { allowedModels: allowed },
  });
  if (boot.errors.length || rt.errors.length) throw new Error(`bench inputs do not verify: ${[...boot.errors, ...rt.errors].map((e) => e.message).join('; ')}`);

  const names = Object.keys(cases);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < 10; i++) for (const n of names) await cases[n]!();
  for (let i = 0; i < runs; i++) {
    for (const n of names) {
      const t = performance.now();
      await cases[n]!();
      times[n]!.push(performance.now() - t);
    }
  }
  const base = median(times[names[0]!]!);
  const rows = names.map((n) => ({ case: n, medianMs: median(times[n]!), p95Ms: p95(times[n]!), vsVerifyQuote: median(times[n]!) / base }));
  let out = `event-log costs, ${runs} interleaved runs (ms); CCEL: ${digests.length} extends, ${area.length} bytes area / ${ccel.length} used; runtime log: ${events.length} events, ${runtimeLog.length} bytes\n`;
  out += `${'case'.padEnd(52)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'x verifyQuote'.padStart(14)}\n`;
  for (const r of rows)
    out += `${r.case.padEnd(52)} ${r.medianMs.toFixed(3).padStart(9)} ${r.p95Ms.toFixed(3).padStart(9)} ${r.vsVerifyQuote.toFixed(2).padStart(14)}\n`;
  process.stdout.write(out);

  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `eventlog-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify({ runs, models: modelCount, node: process.version, ccelBytes: ccel.length, runtimeLogBytes: runtimeLog.length, rows }, null, 2),
  );
  process.stdout.write(`written ${file}\n`);
}
