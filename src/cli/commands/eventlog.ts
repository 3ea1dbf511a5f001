/**
 * `ratls eventlog replay --quote Q --eventlog F [--eventlog F2] [--json]`: replays event logs offline
 * against a quote's RTMRs and shows the workload and named boot events. Reads TCG boot logs (CCEL),
 * ratls-proxy runtime logs and /.well-known/ratls/eventlog documents, and dstack's JSON event log,
 * GetQuote response and attestation.bin. Exit 0 every log replays, 1 a log does not (or breaks a
 * --policy workload pin), 2 usage error or unreadable input.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { readQuoteFile } from '../quote-file.ts';
import { FLAGS } from '../flags.ts';
import { type CliIo, UsageError } from '../io.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { appraiseWorkload, type EvidencePoint } from '../../eventlog/appraise.ts';
import { readEventLogFile, type EventLogFile } from '../../eventlog/detect.ts';
import { dstackReplayScope, replayDstackEvents, type DstackEvent } from '../../eventlog/dstack.ts';
import { replayTcgEvents } from '../../eventlog/replay.ts';
import { parseTcgLog } from '../../eventlog/tcg.ts';
import { parseQuote } from '../../quote/parse.ts';
import { RatlsError } from '../../core/errors.ts';
import { fromHex, toHex } from '../../core/bytes.ts';
import { workloadLines } from '../../client/workload-view.ts';
import { clean } from '../../client/report.ts';

interface ReplayFlags {
  quote?: string;
  eventlog?: string[];
  runtimeLogClaim?: string;
  policy?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`Cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
}

/**
 * What the logs replay to, for a user who has no quote file (only register values from elsewhere):
 * shown in the usage error, never a verdict.
 */
async function replayedWithoutQuote(files: Array<{ file: EventLogFile }>): Promise<string> {
  try {
    const boot = files.map((f) => f.file.logs.bootLog).find((x) => x !== undefined);
    const dstack = files.map((f) => f.file.dstack).find((x) => x !== undefined);
    const rtmrs = boot ? (await replayTcgEvents(parseTcgLog(boot).events)).rtmrs : dstack ? (await replayDstackEvents(dstack)).rtmrs : undefined;
    if (!rtmrs) return '';
    return `\nThe logs replay to (compare with the quote's registers):\n${rtmrs.map((v, i) => `  RTMR${i} ${v}`).join('\n')}`;
  } catch {
    return '';
  }
}

export function registerEventlogCommands(program: Command, io: CliIo): void {
  const cmd = program.command('eventlog').description('TDX event logs: replay them offline against a quote');
  cmd
    .command('replay')
    .description(
      'Replay event logs against the RTMRs of --quote (optional when a dstack file carries its quote) and show what answers (exit 0 replays, 1 does not, 2 usage or unreadable input)',
    )
    .addOption(FLAGS.quote())
    .option(
      '--eventlog <file>',
      'an event log: CCEL/TCG (raw, base64 or hex), ratls runtime log, /.well-known/ratls/eventlog JSON, dstack JSON or attestation.bin, Confidential Containers TDX evidence JSON; repeatable',
      collect,
    )
    .option('--runtime-log-claim <hex>', 'the "runtime-log" claim of the evidence (when the server binds its runtime log through claims)')
    .addOption(FLAGS.policy())
    .addOption(FLAGS.json())
    .action(async (flags: ReplayFlags) => {
      if (!flags.eventlog?.length) throw new UsageError('Give at least one --eventlog FILE.');
      const files: Array<{ path: string; file: EventLogFile }> = [];
      for (const path of flags.eventlog) {
        const bytes = await readInput(path, 'event log');
        try {
          files.push({ path, file: readEventLogFile(bytes) });
        } catch (err) {
          if (err instanceof RatlsError) throw new UsageError(`${path}: ${err.message}`);
          throw err;
        }
      }
      const quoteBytes = flags.quote ? await readQuoteFile(flags.quote, 'the quote') : files.find((f) => f.file.quote)?.file.quote;
      if (!quoteBytes) throw new UsageError(`Give --quote FILE: none of the event logs carries a quote.${await replayedWithoutQuote(files)}`);
      let rtmrs: [string, string, string, string];
      try {
        const b = parseQuote(quoteBytes).body;
        rtmrs = [toHex(b.rtmr0), toHex(b.rtmr1), toHex(b.rtmr2), toHex(b.rtmr3)];
      } catch (err) {
        throw new UsageError(`The quote cannot be read: ${err instanceof Error ? err.message : String(err)}`);
      }
      const claim = flags.runtimeLogClaim?.toLowerCase().replace(/^0x/, '');
      if (claim !== undefined && (!/^[0-9a-f]{96}$/.test(claim) || !fromHex(claim)))
        throw new UsageError('--runtime-log-claim must be 96 hex digits (48 bytes).');
      const evidence: EvidencePoint[] = [{ source: 'quote', rtmr3: rtmrs[3], ...(claim ? { runtimeLog: claim } : {}) }];
      const pick = <K extends 'bootLog' | 'runtimeLog'>(k: K) => files.map((f) => f.file.logs[k]).find((x) => x !== undefined);
      const bootLog = pick('bootLog');
      const runtimeLog = pick('runtimeLog');
      const dstackEvents: DstackEvent[] | undefined = files.find((f) => f.file.dstack)?.file.dstack;
      const policy = flags.policy ? policyFromFlags({ policy: flags.policy }).appraisal.workload : undefined;
      const scope = dstackEvents ? dstackReplayScope(dstackEvents) : undefined;
      const dstackFile = files.find((f) => f.file.dstack);
      if (dstackFile && scope?.stripped) dstackFile.file.notReplayed = scope.stripped;
      const a = await appraiseWorkload({
        rtmrs,
        evidence,
        ...(bootLog ? { bootLog } : {}),
        ...(runtimeLog ? { runtimeLog } : {}),
        ...(dstackEvents && scope ? { dstack: { events: dstackEvents, registers: scope.registers } } : {}),
        ...(policy ? { policy } : {}),
      });
      const ok = a.errors.length === 0;
      if (flags.json) {
        io.out(
          JSON.stringify(
            {
              ok,
              errors: a.errors,
              checks: a.checks,
              quote: { rtmr0: rtmrs[0], rtmr1: rtmrs[1], rtmr2: rtmrs[2], rtmr3: rtmrs[3] },
              files: files.map((f) => ({ file: f.path, kind: f.file.kind, ...(f.file.notReplayed ? { notReplayed: f.file.notReplayed } : {}) })),
              workload: a.report,
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        const lines = [
          `Event-log replay against ${clean(flags.quote ?? 'the quote in the event log file')}`,
          `  Verdict:        ${ok ? "PASS: every log replays to the quote's registers" : 'REJECTED'}`,
          '  Note:           the quote itself is not verified here (use `ratls quote verify`); this checks the logs against its RTMRs.',
          ...files.map((f) => `  Log:            ${clean(f.path)} (${f.file.kind})${f.file.notReplayed ? `; ${clean(f.file.notReplayed)}` : ''}`),
          ...rtmrs.map((v, i) => `  RTMR${i} (quote):  ${v}`),
          ...workloadLines(a.report),
          '  Checks:',
          ...a.checks.map((c) => `    ${c.ok ? 'ok  ' : 'FAIL'} ${clean(c.name)}${c.detail ? `: ${clean(c.detail)}` : ''}`),
          ...(a.errors.length ? ['  Reasons:', ...a.errors.map((e) => `    ${e.code}: ${clean(e.message)}`)] : []),
        ];
        io.out(lines.join('\n') + '\n');
      }
      io.setExitCode(ok ? 0 : 1);
    });
}
