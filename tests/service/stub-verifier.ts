/** Stand-in verifier: parses the quote and reports UpToDate, so the HTTP layer can be tested on its own. */
import type { EvidenceVerifier } from '../../src/service/evidence.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { summarizeQuote } from '../../src/quote/summary.ts';

export const stubVerifier: EvidenceVerifier = {
  async verifyQuote(quote) {
    return { ok: true, tcbStatus: 'UpToDate', advisoryIds: [], errors: [], quote: summarizeQuote(parseQuote(quote)), checks: [] };
  },
  async verifyCertificate() {
    return { ok: false, tcbStatus: null, advisoryIds: [], errors: [{ code: 'CERT_MALFORMED', message: 'not a certificate' }], quote: null, checks: [] };
  },
  async verifyEvidence() {
    return { ok: false, tcbStatus: null, advisoryIds: [], errors: [{ code: 'EVIDENCE_MALFORMED', message: 'not evidence' }], quote: null, checks: [] };
  },
};
