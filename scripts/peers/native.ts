/**
 * Runs the native DCAP verifiers (the wrappers in scripts/peers/*-cli, built by
 * build-native-verifiers.sh) on one quote with a seven-file collateral directory at a given time.
 * Each wrapper verifies `runs` times in its own process and reports every run's duration, so
 * process start-up is never timed.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { requirePeers } from './pins.ts';

const run = promisify(execFile);

export type NativeTool = 'dcap-qvl' | 'go-tdx-guest';

export interface NativeInput {
  quoteFile: string;
  collateralDir: string;
  /** The verification time. */
  at: Date;
  /** PEM of the root go-tdx-guest trusts (Intel's SGX Root CA); dcap-qvl has Intel's built in. */
  rootPemFile: string;
  runs?: number;
  /** dcap-qvl refuses DEBUG TDs unless told otherwise (go-tdx-guest's verify does not look). */
  allowDebug?: boolean;
}

export interface NativeResult {
  tool: NativeTool;
  ok: boolean;
  /** TCB status the tool reported (go-tdx-guest: UpToDate on success, else the one its refusal names). */
  status: string | null;
  advisoryIds: string[];
  error: string | null;
  timesNs: number[];
}

export async function runNative(tool: NativeTool, input: NativeInput): Promise<NativeResult> {
  const paths = requirePeers(['native']);
  const runs = String(input.runs ?? 1);
  const [bin, args] =
    tool === 'dcap-qvl'
      ? [
          paths.dcapQvlBin,
          [
            '--quote',
            input.quoteFile,
            '--collateral',
            input.collateralDir,
            '--now',
            String(Math.floor(input.at.getTime() / 1000)),
            '--runs',
            runs,
            ...(input.allowDebug ? ['--allow-debug'] : []),
          ],
        ]
      : [
          paths.goTdxGuestBin,
          ['--quote', input.quoteFile, '--collateral', input.collateralDir, '--root', input.rootPemFile, '--now', input.at.toISOString(), '--runs', runs],
        ];
  const { stdout } = await run(bin, args, { maxBuffer: 64 * 1024 * 1024 });
  // go-tdx-guest's logger shares stdout: the result is the last line that is our JSON object
  const line = stdout
    .split('\n')
    .filter((l) => l.startsWith('{"tool"'))
    .at(-1);
  if (!line) throw new Error(`${tool}: no result line in its output: ${stdout.slice(-500)}`);
  const r = JSON.parse(line) as Partial<NativeResult>;
  return {
    tool,
    ok: r.ok === true,
    status: r.status ?? null,
    advisoryIds: r.advisoryIds ?? [],
    error: r.error ?? null,
    timesNs: r.timesNs ?? [],
  };
}

/**
 * One word per outcome so verifiers can be compared: the TCB status a tool reported (go-tdx-guest
 * refuses anything but UpToDate, naming the status it found), NO_TCB_LEVEL, or `REFUSED: <reason>`.
 */
export function nativeVerdict(r: NativeResult): string {
  if (r.ok) return r.status ?? 'OK_WITHOUT_STATUS';
  if (r.status) return r.status;
  if (/no matching tcb level/i.test(r.error ?? '')) return 'NO_TCB_LEVEL';
  return `REFUSED: ${r.error}`;
}
