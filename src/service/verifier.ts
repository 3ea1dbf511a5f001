/**
 * The service's EvidenceVerifier on top of the shared DCAP verifier: finds the platform's collateral
 * through the same sources clients use (directories, disk cache, PCCS/PCS; see src/collateral), then
 * runs verifyQuote with the policy's roots and appraisal rules. Certificates go through the RA-TLS
 * certificate verifier, which also checks the claims binding and the nonce.
 */
import type { CollateralSource } from '../collateral/types.ts';
import { fetchCollateral } from '../collateral/chain.ts';
import { collateralSourcesFromSettings } from '../collateral/from-settings.ts';
import { failedResult } from '../core/checks.ts';
import { RatlsError, toVerifyError } from '../core/errors.ts';
import type { QuoteSummary, VerificationResult } from '../core/types.ts';
import { parseQuote } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';
import { pckInfoFromQuote } from '../verify/pck.ts';
import { verifyQuote } from '../verify/dcap.ts';
import { verifyRatlsCertificate } from '../ratls/verify-cert.ts';
import type { EvidenceContext, EvidenceVerifier } from './evidence.ts';
import { MemoCollateralSource } from './memo-source.ts';

/** Where the service gets collateral. */
export interface DcapVerifierOptions {
  /** Tried first, in order. */
  sources?: CollateralSource[];
  /** Local collateral directories. */
  directories?: string[];
  /** PCCS base URL. */
  pccsUrl?: string;
  /** Disk cache for collateral fetched from PCCS/PCS. */
  cacheDir?: string;
  /** Never use the network (directories, cache and given sources only). Default false: PCCS if given, then Intel PCS. */
  offline?: boolean;
  /** Receives collateral lookup failures and unexpected exceptions in full (for the service log). */
  onSourceError?: (err: unknown) => void;
}

/** Builds the DCAP-backed verifier. */
export function createDcapEvidenceVerifier(opts: DcapVerifierOptions = {}): EvidenceVerifier {
  const offline = opts.offline ?? false;
  const sources: CollateralSource[] = [
    ...(opts.sources ?? []),
    ...collateralSourcesFromSettings({
      ...(opts.directories && opts.directories.length > 0 ? { directories: opts.directories } : {}),
      ...(opts.pccsUrl ? { pccsUrl: opts.pccsUrl } : {}),
      ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
      offline,
    }),
  ].map((s) => new MemoCollateralSource(s));

  return {
    async verifyQuote(quote: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult> {
      // the measurements are worth reporting even when the chain or collateral fails later
      let summary: QuoteSummary | null = null;
      try {
        const parsed = parseQuote(quote);
        summary = summarizeQuote(parsed);
        const pck = pckInfoFromQuote(parsed);
        summary = summarizeQuote(parsed, { fmspc: pck.fmspc, pceId: pck.pceId });
        const minEval = ctx.policy.appraisal.minTcbEvaluationDataNumber;
        const request = { fmspc: pck.fmspc, pckCa: pck.pckCa, now: ctx.now, ...(minEval !== undefined ? { minTcbEvaluationDataNumber: minEval } : {}) };
        let collateral;
        try {
          ({ collateral } = await fetchCollateral(sources, request));
        } catch (err) {
          // the detailed message names the service's directories and URLs: log it, do not sign it
          opts.onSourceError?.(err);
          // when only collateral below the policy minimum exists, appraise with it: verifyQuote then
          // names the real reason (TCB_EVALUATION_TOO_OLD) from the signature-checked data
          const older =
            minEval !== undefined ? await fetchCollateral(sources, { ...request, minTcbEvaluationDataNumber: undefined }).catch(() => undefined) : undefined;
          if (!older) {
            throw new RatlsError(
              'COLLATERAL_MISSING',
              `The service has no current collateral for FMSPC ${pck.fmspc} (${pck.pckCa} CA) at ${ctx.now.toISOString()}; its operator must refresh the collateral sources.`,
            );
          }
          collateral = older.collateral;
        }
        // sources skip collateral below the minimum; verifyQuote enforces it on the signed data
        return await verifyQuote(quote, {
          collateral,
          now: ctx.now,
          trustedRoots: ctx.policy.trustedRoots,
          policy: ctx.policy.appraisal,
        });
      } catch (err) {
        if (!(err instanceof RatlsError)) opts.onSourceError?.(err);
        return failed(err, summary);
      }
    },
    async verifyCertificate(der: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult> {
      try {
        return await verifyRatlsCertificate(der, {
          now: ctx.now,
          trustedRoots: ctx.policy.trustedRoots,
          policy: ctx.policy.appraisal,
          collateralSources: sources,
          ...(ctx.nonce ? { expectedNonce: ctx.nonce } : {}),
          ...(ctx.policy.freshness.maxCertAgeSeconds ? { maxCertAgeSeconds: ctx.policy.freshness.maxCertAgeSeconds } : {}),
        });
      } catch (err) {
        if (!(err instanceof RatlsError)) opts.onSourceError?.(err);
        return failed(err);
      }
    },
  };
}

/**
 * A result that carries only the error. Unexpected exceptions become a generic INTERNAL message:
 * their text can name server internals and would otherwise end up in a signed token.
 */
function failed(err: unknown, quote: QuoteSummary | null = null): VerificationResult {
  const e =
    err instanceof RatlsError
      ? toVerifyError(err)
      : { code: 'INTERNAL' as const, message: 'The verifier failed unexpectedly; the operator can find details in the service log.' };
  return failedResult(e, { quote });
}
