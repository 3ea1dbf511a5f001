/** Turns a parsed quote back into encoder parts, for byte-exact re-encoding checks. */
import type { QuoteParts } from '../../src/quote/encode.ts';
import type { Quote } from '../../src/quote/types.ts';

export function quoteParts(q: Quote): QuoteParts {
  return {
    header: { ...q.header, version: 4 },
    body: q.body,
    signature: q.signature,
    attestationKey: q.attestationKey,
    qeReport: q.certification.qeReport.raw,
    qeReportSignature: q.certification.qeReportSignature,
    qeAuthData: q.certification.qeAuthData,
    pckChainPem: new TextDecoder().decode(q.certification.certData),
  };
}
