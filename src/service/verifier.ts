/**
 * The service's EvidenceVerifier on top of the shared DCAP verifier: finds the platform's collateral
 * through the same sources clients use (directories, disk cache, PCCS/PCS; see src/collateral), then
 * runs verifyQuote with the policy's roots and appraisal rules. Certificates go through the RA-TLS
 * certificate verifier, which also checks the claims binding and the nonce.
 */
import type { CollateralSource } from '../collateral/types.ts';
import { fetchCollateral } from '../collateral/chain.ts';
import { collateralSourcesFromSettings } from '../collateral/from-settings.ts';
import { toVerifyError } from '../verify/errors.ts';
import type { AppraisalPolicy, Collateral, QuoteSummary, VerificationResult } from '../verify/types.ts';
import { parseQuote } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';
import { pckInfoFromQuote } from '../verify/pck.ts';
import type { EvidenceContext, EvidenceVerifier } from './evidence.ts';

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
}

/** The shape of the RA-TLS certificate verifier entry point this module relies on. */
interface RatlsCertModule {
  verifyRatlsCertificate(
    der: Uint8Array,
    opts: {
      now: Date;
      trustedRoots?: Array<string | Uint8Array>;
      policy?: AppraisalPolicy;
      collateralSources?: CollateralSource[];
      expectedNonce?: Uint8Array;
      maxCertAgeSeconds?: number;
    },
  ): Promise<VerificationResult>;
}

/** The shape of the shared DCAP verifier entry points this module relies on. */
interface DcapModule {
  verifyQuote(quote: Uint8Array, opts: { collateral: Collateral; now: Date; trustedRoots?: Array<string | Uint8Array>; policy?: AppraisalPolicy }): Promise<VerificationResult>;
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
  ];

  return {
    async verifyQuote(quote: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult> {
      // the measurements are worth reporting even when the chain or collateral fails later
      let summary: QuoteSummary | null = null;
      try {
        const parsed = parseQuote(quote);
        summary = summarizeQuote(parsed);
        const pck = pckInfoFromQuote(parsed);
        summary = summarizeQuote(parsed, { fmspc: pck.fmspc, pceId: pck.pceId });
        const { collateral } = await fetchCollateral(sources, { fmspc: pck.fmspc, pckCa: pck.pckCa, now: ctx.now });
        const dcap = await loadDcap();
        return await dcap.verifyQuote(quote, {
          collateral,
          now: ctx.now,
          trustedRoots: ctx.policy.trustedRoots,
          policy: ctx.policy.appraisal,
        });
      } catch (err) {
        return failed(err, summary);
      }
    },
    async verifyCertificate(der: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult> {
      try {
        const ratls = await loadRatlsCert();
        return await ratls.verifyRatlsCertificate(der, {
          now: ctx.now,
          trustedRoots: ctx.policy.trustedRoots,
          policy: ctx.policy.appraisal,
          collateralSources: sources,
          ...(ctx.nonce ? { expectedNonce: ctx.nonce } : {}),
          ...(ctx.policy.freshness.maxCertAgeSeconds ? { maxCertAgeSeconds: ctx.policy.freshness.maxCertAgeSeconds } : {}),
        });
      } catch (err) {
        return failed(err);
      }
    },
  };
}

/** A result that carries only the error (verification stopped before a quote was read). */
function failed(err: unknown, quote: QuoteSummary | null = null): VerificationResult {
  return { ok: false, tcbStatus: null, advisoryIds: [], errors: [toVerifyError(err)], quote, checks: [] };
}

// The DCAP verifier lands in src/verify/dcap.ts in parallel with this service; resolved lazily so the
// service builds before it exists. Replaced by a static import once it is there.
let dcapModule: Promise<DcapModule> | undefined;
function loadDcap(): Promise<DcapModule> {
  const path = '../verify/dcap.ts';
  dcapModule ??= import(path) as Promise<DcapModule>;
  return dcapModule;
}

let ratlsCertModule: Promise<RatlsCertModule> | undefined;
function loadRatlsCert(): Promise<RatlsCertModule> {
  const path = '../verify/ratls-cert.ts';
  ratlsCertModule ??= import(path) as Promise<RatlsCertModule>;
  return ratlsCertModule;
}
