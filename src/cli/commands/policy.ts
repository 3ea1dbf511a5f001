import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { FLAGS } from '../flags.ts';
import { type CliIo, UsageError } from '../io.ts';
import { readCertificateFile } from '../cert-file.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { loadPolicyFile } from '../../policy/load.ts';
import { probe } from '../../client/probe.ts';
import { Attestor } from '../../client/attestor.ts';
import { policyToYaml, type ClientPolicy } from '../../verify/policy-file.ts';
import { RatlsError } from '../../core/errors.ts';
import { allAdvisoryIds, TCB_STATUSES, type VerificationResult } from '../../core/types.ts';

interface FromFlags {
  url?: string;
  cert?: string;
  root?: string[];
  policy?: string;
  out?: string;
  pinPlatform?: boolean;
}

/**
 * A policy pinned to what `result` shows; measurements as presented, statuses as found. With
 * `pinPlatform`, also the physical platform (PPID, FMSPC, PCE ID of the PCK certificate).
 * Collateral settings that are paths of this machine (cache and local directories) are left out:
 * the file is meant to be published and used elsewhere.
 */
export function pinnedPolicy(base: ClientPolicy, result: VerificationResult, opts: { pinPlatform?: boolean } = {}): ClientPolicy {
  const q = result.quote!;
  const platform = opts.pinPlatform && q.ppid && q.fmspc && q.pceId ? { ppid: [q.ppid], fmspc: [q.fmspc], pceId: [q.pceId] } : {};
  const { cacheDir: _cache, directories: _dirs, ...portableCollateral } = base.collateral;
  return {
    trustedRoots: base.trustedRoots,
    appraisal: {
      allowedTcbStatuses: result.tcbStatus ? [result.tcbStatus] : ['UpToDate'],
      // every advisory the policy will check, not only the platform level's
      allowedAdvisoryIds: allAdvisoryIds(result),
      allowDebug: q.debug,
      mrTd: [q.mrTd],
      rtmr0: [q.rtmr0],
      rtmr1: [q.rtmr1],
      rtmr2: [q.rtmr2],
      rtmr3: [q.rtmr3],
      mrSeam: [q.mrSeam],
      xfam: [q.xfam],
      tdAttributes: [q.tdAttributes],
      ...platform,
    },
    freshness: { ...base.freshness },
    collateral: portableCollateral,
  };
}

/** Writes `text` to `path` only once it is complete: a temporary file in the same directory, then a rename. */
async function writeWhole(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, text, { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new UsageError(`Cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
}

/** `ratls policy from --url https://host | --cert FILE`: print a policy pinned to what the server presents. */
export function registerPolicyCommands(program: Command, io: CliIo): void {
  const policy = program.command('policy').description('Client policy files: generate and check');
  policy
    .command('from')
    .description(
      'Make a policy pinned to the measurements and TCB status a server (--url) or its certificate (--cert) presents, for review (exit 0 ok, 1 not verifiable, 2 usage or connection error). A simulated server needs --root .ratls/sim/root.pem',
    )
    .option('--url <url>', 'https://host[:port] of the RA-TLS server')
    .addOption(FLAGS.cert())
    .addOption(FLAGS.root())
    .addOption(FLAGS.policy())
    .option('--out <file>', 'write the policy to this file, only when it could be made (default: standard output)')
    .option('--pin-platform', 'also pin the physical platform (PPID, FMSPC, PCE ID from the PCK certificate): the same image on another machine is refused')
    .action(async (flags: FromFlags) => {
      if (!flags.url === !flags.cert) throw new UsageError('Give exactly one of --url or --cert.');
      const base = policyFromFlags({ ...(flags.policy ? { policy: flags.policy } : {}), ...(flags.root ? { root: flags.root } : {}) });
      // Verify the cryptography only: every status and DEBUG admitted, nothing pinned yet.
      const permissive: ClientPolicy = {
        ...base,
        appraisal: { allowedTcbStatuses: [...TCB_STATUSES], allowDebug: true },
        freshness: { ...base.freshness, requireNonce: false },
      };
      let result: VerificationResult;
      let source: string;
      if (flags.url) {
        try {
          result = (await probe(flags.url, permissive)).result;
        } catch (err) {
          if (err instanceof RatlsError) {
            io.err(`ratls policy from: ${err.code}: ${err.message}\n`);
            io.setExitCode(2);
            return;
          }
          throw err;
        }
        source = flags.url;
      } else {
        result = await new Attestor(permissive).verifyCertificate(await readCertificateFile(flags.cert!));
        // the file name only: the policy must not carry a path of this machine
        source = `the certificate ${basename(flags.cert!)}`;
      }
      if (!result.ok || !result.quote) {
        io.err(`ratls policy from: the evidence of ${source} does not verify, so there is nothing trustworthy to pin:\n`);
        for (const e of result.errors) io.err(`  ${e.code}: ${e.message}\n`);
        if (result.errors.some((e) => e.code === 'PCK_CHAIN_UNTRUSTED') && !flags.root) {
          io.err('  (a simulated server chains to its own root: add --root with that root, e.g. --root .ratls/sim/root.pem)\n');
        }
        if (flags.out) io.err(`  ${flags.out} was not written.\n`);
        io.setExitCode(1);
        return;
      }
      const notes = [
        `Policy pinned to what ${source} presented at ${new Date().toISOString()}.`,
        'Review before publishing: these values are only as good as the software they measure.',
        `TCB status ${result.tcbStatus ?? 'unknown'}${allAdvisoryIds(result).length ? `, advisories ${allAdvisoryIds(result).join(', ')}` : ''}.`,
      ];
      if (result.nonIntelRoot) notes.push('WARNING: SIMULATED / non-Intel root. Do not publish for production.');
      if (result.quote.debug) notes.push('WARNING: the TD is in DEBUG mode (allowDebug: true below); the host can read its memory.');
      if (result.tcbStatus && result.tcbStatus !== 'UpToDate')
        notes.push(`WARNING: TCB status ${result.tcbStatus} admitted below; prefer UpToDate after the platform is updated.`);
      if (flags.pinPlatform) {
        if (!result.quote.ppid) {
          io.err('ratls policy from: --pin-platform: the quote names no PPID to pin.\n');
          io.setExitCode(1);
          return;
        }
        notes.push(
          `Pinned to platform PPID ${result.quote.ppid} (FMSPC ${result.quote.fmspc}, PCE ID ${result.quote.pceId}): a migration or hardware change needs a new policy.`,
        );
      }
      const yaml = policyToYaml(pinnedPolicy(base, result, { pinPlatform: flags.pinPlatform === true }), notes.join('\n'));
      if (flags.out) {
        await writeWhole(flags.out, yaml);
        io.err(
          `ratls policy from: wrote ${flags.out} (MRTD ${result.quote.mrTd.slice(0, 16)}..., TCB ${result.tcbStatus ?? 'unknown'}${result.nonIntelRoot ? ', SIMULATED root' : ''}${flags.pinPlatform ? `, platform PPID ${result.quote.ppid}` : ''})\n`,
        );
      } else io.out(yaml);
      io.setExitCode(0);
    });
  policy
    .command('check')
    .description('Validate a policy file and print what it accepts (exit 0 valid, 2 invalid)')
    .argument('<file>', 'policy file (YAML or JSON)')
    .action((file: string) => {
      let p: ClientPolicy;
      try {
        p = loadPolicyFile(file);
      } catch (err) {
        if (err instanceof RatlsError) {
          io.err(`ratls policy check: ${err.code}: ${err.message}\n`);
          io.setExitCode(2);
          return;
        }
        throw err;
      }
      const a = p.appraisal;
      const pinned = (['mrTd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mrSeam', 'xfam', 'tdAttributes'] as const).filter((k) => a[k]);
      const platform = (['ppid', 'fmspc', 'pceId'] as const).filter((k) => a[k]);
      io.out(`${file}: valid\n`);
      io.out(`  trusted roots      ${p.trustedRoots.length}\n`);
      io.out(`  TCB statuses       ${(a.allowedTcbStatuses ?? ['UpToDate']).join(', ')}\n`);
      io.out(`  advisories         ${a.allowedAdvisoryIds ? a.allowedAdvisoryIds.join(', ') || 'none allowed' : 'not checked'}\n`);
      io.out(
        `  collateral         ${a.minTcbEvaluationDataNumber !== undefined ? `tcbEvaluationDataNumber >= ${a.minTcbEvaluationDataNumber}` : 'any current (no minimum evaluation number)'}\n`,
      );
      io.out(`  DEBUG              ${a.allowDebug ? 'ALLOWED' : 'rejected'}\n`);
      io.out(`  pinned             ${pinned.length ? pinned.join(', ') : 'nothing (any genuine TD passes)'}\n`);
      io.out(
        `  platform           ${platform.length ? platform.map((k) => `${k} ${a[k]!.join('|')}`).join(', ') : 'not pinned (any machine running the image)'}\n`,
      );
      io.out(
        `  binding            ${p.freshness.binding === 'session' ? 'session (evidence bound to each TLS session)' : `certificate (relayable if the TLS key leaks)${p.freshness.requireNonce ? ', nonce round trip' : ''}`}\n`,
      );
      io.out(
        `  freshness          ${p.freshness.maxCertAgeSeconds ? `certificates at most ${p.freshness.maxCertAgeSeconds} s old, ` : ''}connections closed after ${p.freshness.maxConnectionAgeSeconds ? `${p.freshness.maxConnectionAgeSeconds} s` : 'no limit'}\n`,
      );
      io.setExitCode(0);
    });
}
