/**
 * The service's EvidenceVerifier on top of the shared DCAP verifier: finds the platform's collateral
 * through the same sources clients use (directories, disk cache, PCCS/PCS; see src/collateral), then
 * runs verifyQuote with the policy's roots and appraisal rules. Certificates and CCC evidence go
 * through the RA-TLS verifier, which also checks the claims binding and the nonce.
 */
import type { CollateralSource } from '../collateral/types.ts';
import { fetchCollateral } from '../collateral/chain.ts';
import { collateralSourcesFromSettings } from '../collateral/from-settings.ts';
import { CheckRecorder, failedResult } from '../core/checks.ts';
import { RatlsError, toVerifyError, type VerifyError } from '../core/errors.ts';
import type { QuoteSummary, VerificationResult } from '../core/types.ts';
import { constantTimeEqual, toHex } from '../core/bytes.ts';
import { parseQuote } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';
import { pckInfoFromQuote } from '../verify/pck.ts';
import { verifyQuote } from '../verify/dcap.ts';
import { readRatlsCertificate } from '../ratls/certificate.ts';
import { verifyRatlsCertificate, verifyRatlsEvidence } from '../ratls/verify-cert.ts';
import { decodeEvidence } from '../ratls/extension.ts';
import { decodeClaims, reportDataForClaims, type RatlsClaims } from '../ratls/claims.ts';
import { StapledCollateralSource } from '../ratls/stapled-source.ts';
import type { ClaimsFacts, EvidenceContext, EvidenceVerifier } from './evidence.ts';
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

  const verifier: EvidenceVerifier = {
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
    async verifyEvidence(evidence, certificate, ctx) {
      let parts: { quote: Uint8Array; claimsBuffer: Uint8Array; claims: RatlsClaims };
      try {
        const { quote, claimsBuffer } = decodeEvidence(evidence);
        parts = { quote, claimsBuffer, claims: decodeClaims(claimsBuffer) };
      } catch (err) {
        return failed(err);
      }
      const claims: ClaimsFacts = { pubkeyHash: `${parts.claims.pubkeyHashAlg.toLowerCase()}:${toHex(parts.claims.pubkeyHash)}` };
      try {
        const result = certificate ? await evidenceWithCertificate(evidence, certificate, ctx) : await bareEvidence(parts, ctx);
        return { ...result, claims };
      } catch (err) {
        if (!(err instanceof RatlsError)) opts.onSourceError?.(err);
        return failed(err);
      }
    },
  };

  /**
   * Evidence and the certificate whose key it names: the certificate is verified on its own (its
   * staple also serves the evidence's quote, same platform), then the evidence against its key.
   */
  async function evidenceWithCertificate(evidence: Uint8Array, certificate: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult> {
    // the nonce is the evidence's; the certificate's claims carry none
    const cert = await verifier.verifyCertificate(certificate, { ...ctx, nonce: undefined });
    let spki: Uint8Array;
    let stapled: StapledCollateralSource | undefined;
    try {
      spki = readRatlsCertificate(certificate).spkiDer;
    } catch {
      return cert; // CERT_MALFORMED, recorded by the certificate check
    }
    try {
      stapled = StapledCollateralSource.fromCertificate(certificate);
    } catch {
      stapled = undefined; // a broken staple is reported by the certificate check
    }
    const policy = { ...ctx.policy.appraisal };
    delete policy.reportData; // RA-TLS binds REPORTDATA itself
    const ev = await verifyRatlsEvidence(evidence, spki, {
      now: ctx.now,
      trustedRoots: ctx.policy.trustedRoots,
      policy,
      collateralSources: stapled ? [stapled, ...sources] : sources,
      ...(ctx.nonce ? { expectedNonce: ctx.nonce } : {}),
    });
    const seen = new Set<string>();
    const errors: VerifyError[] = [];
    for (const e of [...cert.errors, ...ev.errors]) {
      if (seen.has(`${e.code} ${e.message}`)) continue;
      seen.add(`${e.code} ${e.message}`);
      errors.push(e);
    }
    const result: VerificationResult = {
      ok: cert.ok && ev.ok,
      tcbStatus: ev.tcbStatus,
      advisoryIds: ev.advisoryIds,
      ...(ev.tdxModuleAdvisoryIds ? { tdxModuleAdvisoryIds: ev.tdxModuleAdvisoryIds } : {}),
      ...(ev.qeAdvisoryIds ? { qeAdvisoryIds: ev.qeAdvisoryIds } : {}),
      ...(ev.qvlStatus !== undefined ? { qvlStatus: ev.qvlStatus } : {}),
      errors,
      // the token describes the fresh quote, not the certificate's
      quote: ev.quote,
      checks: [...cert.checks.map((c) => ({ ...c, name: `certificate: ${c.name}` })), ...ev.checks],
    };
    if (ev.nonIntelRoot || cert.nonIntelRoot) result.nonIntelRoot = true;
    return result;
  }

  /**
   * Evidence alone: nothing says which key the claims name, so the token reports the pubkey-hash
   * for the relying party to compare with the key it saw; everything else is checked here.
   */
  async function bareEvidence(parts: { quote: Uint8Array; claimsBuffer: Uint8Array; claims: RatlsClaims }, ctx: EvidenceContext): Promise<VerificationResult> {
    const rec = new CheckRecorder();
    rec.pass('evidence', 'CCC RA-TLS evidence: CBOR tag 60000 [quote, claims]');
    const reportData = parseQuote(parts.quote).body.reportData;
    if (constantTimeEqual(await reportDataForClaims(parts.claimsBuffer), reportData)) rec.pass('REPORTDATA binding', 'REPORTDATA = SHA-256(claims) || 0^32');
    else {
      rec.fail('REPORTDATA binding', {
        code: 'REPORTDATA_MISMATCH',
        message: "The quote's REPORTDATA is not SHA-256 of the evidence's claims followed by zeros: the quote was not made for these claims.",
      });
    }
    if (ctx.nonce) {
      const got = parts.claims.nonce;
      if (!got)
        rec.fail('nonce', {
          code: 'NONCE_MISSING',
          message: 'A nonce was sent but the evidence claims carry none; ask the server for evidence over your nonce.',
        });
      else if (!constantTimeEqual(got, ctx.nonce)) {
        rec.fail('nonce', {
          code: 'NONCE_MISMATCH',
          message: 'The evidence claims carry a different nonce than the request: it is a replay or belongs to another request.',
        });
      } else rec.pass('nonce', 'the claims carry the request nonce');
    }
    const appraisal = { ...ctx.policy.appraisal };
    delete appraisal.reportData;
    return rec.around(await verifier.verifyQuote(parts.quote, { ...ctx, policy: { ...ctx.policy, appraisal } }));
  }

  return verifier;
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
