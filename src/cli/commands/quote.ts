/**
 * `ratls quote verify` and `ratls quote inspect`: DCAP verification of a raw TDX quote file
 * against a collateral directory, and a field dump. Exit 0 ok, 1 rejected, 2 usage/unreadable.
 */
import type { Command } from 'commander';
import { type CliIo, UsageError, parseAt } from '../io.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { loadCollateral } from '../../collateral/file.ts';
import { parseQuote } from '../../quote/parse.ts';
import { summarizeQuote } from '../../quote/summary.ts';
import { verifyQuote } from '../../verify/dcap.ts';
import { RatlsError, toVerifyError } from '../../core/errors.ts';
import { pckInfoFromQuote } from '../../verify/pck.ts';
import { formatQuoteFields } from '../../verify/report.ts';
import { policyCheckJson, renderReport } from '../../client/report.ts';
import { fileFlagOrArgument, FLAGS } from '../flags.ts';
import { readQuoteFile } from '../quote-file.ts';
import { TCB_STATUSES, type AppraisalPolicy, type TcbStatus } from '../../core/types.ts';

interface VerifyFlags {
  quote: string;
  collateral: string;
  at?: string;
  policy?: string;
  root?: string[];
  allowStatus?: string[];
  allowDebug?: boolean;
  json?: boolean;
}

interface InspectFlags {
  quote: string;
  json?: boolean;
}

function parseStatuses(list: string[] | undefined, base: TcbStatus[]): TcbStatus[] | undefined {
  if (!list || list.length === 0) return undefined;
  const out: TcbStatus[] = [...base];
  for (const item of list.flatMap((s) => s.split(','))) {
    const s = item.trim();
    if (!s) continue;
    if (!(TCB_STATUSES as readonly string[]).includes(s)) {
      throw new UsageError(`--allow-status "${s}" is not a TCB status; use one of ${TCB_STATUSES.join(', ')}`);
    }
    if (!out.includes(s as TcbStatus)) out.push(s as TcbStatus);
  }
  return out;
}

async function runVerify(f: VerifyFlags, io: CliIo): Promise<void> {
  const now = parseAt(f.at);
  // A policy file (the same YAML/JSON `ratls verify` uses) sets the appraisal and roots; --root
  // (PEM, PEM bundle or DER, as for `ratls verify`) replaces the roots; the flags below add to it.
  const base = policyFromFlags({ ...(f.policy ? { policy: f.policy } : {}), ...(f.root ? { root: f.root } : {}) });
  const policy: AppraisalPolicy = { ...base.appraisal };
  const allowed = parseStatuses(f.allowStatus, policy.allowedTcbStatuses ?? ['UpToDate']);
  const quote = await readQuoteFile(f.quote);
  let collateral;
  try {
    collateral = await loadCollateral(f.collateral);
  } catch (err) {
    throw new UsageError(err instanceof RatlsError ? err.message : `cannot read collateral directory ${f.collateral}`);
  }
  if (allowed) policy.allowedTcbStatuses = allowed;
  if (f.allowDebug) policy.allowDebug = true;
  const result = await verifyQuote(quote, { collateral, now, policy, trustedRoots: base.trustedRoots });
  if (f.json) io.out(`${JSON.stringify({ ...result, policyCheck: policyCheckJson(result, policy) })}\n`);
  else io.out(renderReport(result, { target: f.quote, kind: 'quote', nonceRequested: false, nonceVerified: false, colour: io.isTty, at: now, policy }));
  io.setExitCode(result.ok ? 0 : 1);
}

async function runInspect(f: InspectFlags, io: CliIo): Promise<void> {
  const bytes = await readQuoteFile(f.quote);
  try {
    const q = parseQuote(bytes);
    let pck: ReturnType<typeof pckInfoFromQuote> | undefined;
    let pckError: string | undefined;
    try {
      pck = pckInfoFromQuote(q);
    } catch (err) {
      pckError = toVerifyError(err).message;
    }
    const summary = summarizeQuote(q, pck ? { fmspc: pck.fmspc, pceId: pck.pceId } : undefined);
    const pckJson = pck
      ? {
          pckCa: pck.pckCa,
          fmspc: pck.fmspc,
          pceId: pck.pceId,
          pceSvn: pck.pceSvn,
          cpuSvn: pck.cpuSvn,
          tcbComponents: pck.tcbComponents,
          sgxType: pck.sgxType,
          leafSubject: pck.leaf.subjectCn,
          leafNotBefore: pck.leaf.notBefore.toISOString(),
          leafNotAfter: pck.leaf.notAfter.toISOString(),
        }
      : null;
    const qe = q.certification.qeReport;
    const qeJson = { isvProdId: qe.isvProdId, isvSvn: qe.isvSvn, miscSelect: qe.miscSelect, qeAuthDataBytes: q.certification.qeAuthData.length };
    if (f.json) {
      io.out(
        `${JSON.stringify({ quote: summary, length: q.length, padding: bytes.length - q.length, pck: pckJson, qeReport: qeJson, ...(pckError ? { pckError } : {}) })}\n`,
      );
    } else {
      let out = `TDX quote (${q.length} bytes${bytes.length > q.length ? `, ${bytes.length - q.length} bytes of padding ignored` : ''})\n`;
      out += formatQuoteFields(summary);
      out += `\nQE report\n  ISVPRODID ${qe.isvProdId}, ISVSVN ${qe.isvSvn}, QE auth data ${q.certification.qeAuthData.length} bytes\n`;
      if (pckJson) {
        out += `\nPCK certificate (not verified here; use "ratls quote verify")\n`;
        out += `  issuer CA    ${pckJson.pckCa}\n  PCESVN       ${pckJson.pceSvn}\n  CPUSVN       ${pckJson.cpuSvn}\n  SGX type     ${pckJson.sgxType}\n`;
        out += `  valid        ${pckJson.leafNotBefore} .. ${pckJson.leafNotAfter}\n`;
      } else out += `\nPCK certificate: ${pckError}\n`;
      io.out(out);
    }
    io.setExitCode(0);
  } catch (err) {
    const e = toVerifyError(err, 'QUOTE_MALFORMED');
    if (f.json) io.out(`${JSON.stringify({ ok: false, errors: [e] })}\n`);
    else io.err(`ratls: ${e.code}: ${e.message}\n`);
    io.setExitCode(1);
  }
}

/** Registers `quote verify` and `quote inspect`. */
export function registerQuoteCommands(program: Command, io: CliIo): void {
  const quote = program.command('quote').description('Inspect and verify raw Intel TDX quotes (DCAP)');
  quote
    .command('verify')
    .description('Verify a TDX quote with Intel DCAP collateral; exit 0 ok, 1 rejected, 2 usage error')
    .argument('[file]', 'the quote, as --quote')
    .addOption(FLAGS.quote())
    .addOption(FLAGS.collateral().makeOptionMandatory())
    .addOption(FLAGS.at())
    .addOption(FLAGS.policy())
    .addOption(FLAGS.root())
    .option('--allow-status <status...>', "also accept these Intel TCB statuses, on top of the policy's (UpToDate is always accepted)")
    .option('--allow-debug', 'also accept DEBUG TDs, whatever the policy says (never in production)')
    .addOption(FLAGS.json())
    .action(async (file: string | undefined, f: Omit<VerifyFlags, 'quote'> & { quote?: string }) =>
      runVerify({ ...f, quote: fileFlagOrArgument(f.quote, file, '--quote') }, io),
    );
  quote
    .command('inspect')
    .description('Print the fields of a TDX quote without verifying it')
    .argument('[file]', 'the quote, as --quote')
    .addOption(FLAGS.quote())
    .addOption(FLAGS.json())
    .action(async (file: string | undefined, f: Omit<InspectFlags, 'quote'> & { quote?: string }) =>
      runInspect({ ...f, quote: fileFlagOrArgument(f.quote, file, '--quote') }, io),
    );
}
