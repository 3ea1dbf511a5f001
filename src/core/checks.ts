/**
 * One way to record the checks of a verification and report its failures: every verifier (DCAP,
 * the RA-TLS certificate check) fills a {@link CheckRecorder}, and every place that fails before a
 * verifier ran (the service, the clients) builds its result with {@link failedResult}.
 * Browser-safe.
 */
import { toVerifyError, type ErrorCode, type VerifyError } from './errors.ts';
import type { CheckRecord, QuoteSummary, QvlStatus, TcbStatus, VerificationResult } from './types.ts';

/** How a failed check shows its reason in the readable report. */
export interface CheckRecorderOptions {
  /**
   * Put the error code before the message in the check's detail ("CODE: message"). The DCAP report
   * has always shown codes there; the RA-TLS checks show the message alone.
   */
  codeInDetail?: boolean;
}

/** What a verification learnt about the quote, reported next to its checks. */
export interface VerificationOutcome {
  quote?: QuoteSummary | null;
  tcbStatus?: TcbStatus | null;
  advisoryIds?: string[];
  /** Reported only when set (verifyQuote always sets these three). */
  tdxModuleAdvisoryIds?: string[];
  qeAdvisoryIds?: string[];
  qvlStatus?: QvlStatus | null;
  /** Set only when true (the quote chains to a root other than Intel's). */
  nonIntelRoot?: boolean;
}

/** Collects checks in order; a verification fails when it recorded at least one error. */
export class CheckRecorder {
  readonly errors: VerifyError[] = [];
  readonly checks: CheckRecord[] = [];
  private readonly codeInDetail: boolean;

  constructor(opts: CheckRecorderOptions = {}) {
    this.codeInDetail = opts.codeInDetail ?? false;
  }

  /** True while no error has been recorded. */
  get ok(): boolean {
    return this.errors.length === 0;
  }

  pass(name: string, detail?: string): void {
    this.checks.push(detail === undefined ? { name, ok: true } : { name, ok: true, detail });
  }

  /** Records a failed check and its error. */
  fail(name: string, err: VerifyError): void {
    this.checks.push({ name, ok: false, detail: this.codeInDetail ? `${err.code}: ${err.message}` : err.message });
    this.errors.push(err);
  }

  /** Records a failed check from anything thrown; non-RatlsError values get `fallback`. */
  failWith(name: string, err: unknown, fallback: ErrorCode = 'INTERNAL'): void {
    this.fail(name, toVerifyError(err, fallback));
  }

  /** Passes when `err` is undefined, else fails with it; returns whether it passed. */
  check(name: string, err: VerifyError | undefined, detail?: string): boolean {
    if (err) this.fail(name, err);
    else this.pass(name, detail);
    return err === undefined;
  }

  /**
   * A check that did not pass but does not decide the verdict (e.g. a broken optional input another
   * source replaces): shown as a warning, adds no error.
   */
  warn(name: string, detail: string): void {
    this.checks.push({ name, ok: false, warning: true, detail });
  }

  /** A check that was not run because an earlier one failed: shown as failed, adds no error. */
  skip(name: string, reason: string): void {
    this.checks.push({ name, ok: false, detail: reason });
  }

  /** The result of everything recorded, with what was learnt about the quote. */
  result(outcome: VerificationOutcome = {}): VerificationResult {
    // Key order is the JSON order the CLI prints: the verdict first, the checks last.
    const r: VerificationResult = {
      ok: this.ok,
      tcbStatus: outcome.tcbStatus ?? null,
      ...(outcome.qvlStatus !== undefined ? { qvlStatus: outcome.qvlStatus } : {}),
      advisoryIds: outcome.advisoryIds ?? [],
      ...(outcome.tdxModuleAdvisoryIds ? { tdxModuleAdvisoryIds: outcome.tdxModuleAdvisoryIds } : {}),
      ...(outcome.qeAdvisoryIds ? { qeAdvisoryIds: outcome.qeAdvisoryIds } : {}),
      errors: this.errors,
      quote: outcome.quote ?? null,
      checks: this.checks,
    };
    if (outcome.nonIntelRoot) r.nonIntelRoot = true;
    return r;
  }

  /**
   * `inner` (a nested verification, e.g. DCAP inside the RA-TLS check) preceded by what this
   * recorder holds: its checks and errors come first, and it is ok only if both are.
   */
  around(inner: VerificationResult): VerificationResult {
    const errors = [...this.errors, ...inner.errors];
    return { ...inner, ok: inner.ok && errors.length === 0, errors, checks: [...this.checks, ...inner.checks] };
  }
}

/**
 * The result of a verification that failed before any check ran (no connection, no evidence, no
 * collateral): `error` alone, recorded as the check `check` when one is named. `quote` is the
 * summary when the quote was read before the failure.
 */
export function failedResult(error: VerifyError, opts: { check?: string; quote?: QuoteSummary | null } = {}): VerificationResult {
  return {
    ok: false,
    tcbStatus: null,
    advisoryIds: [],
    errors: [error],
    quote: opts.quote ?? null,
    checks: opts.check === undefined ? [] : [{ name: opts.check, ok: false, detail: error.message }],
  };
}

/** `r` with one more error: it stays as it was otherwise, but is no longer ok. */
export function withError(r: VerificationResult, error: VerifyError): VerificationResult {
  return { ...r, ok: false, errors: [...r.errors, error] };
}

/** How a report marks a check: passed, failed, or a warning that does not decide the verdict. */
export function checkMark(c: CheckRecord): 'ok' | 'WARN' | 'FAIL' {
  if (c.ok) return 'ok';
  return c.warning ? 'WARN' : 'FAIL';
}
