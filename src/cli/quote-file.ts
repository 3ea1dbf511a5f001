/** Reading quote files given on the command line. */
import { readFile } from 'node:fs/promises';
import { fromBase64, fromHex } from '../core/bytes.ts';
import { UsageError } from './io.ts';
import { readEventLogFile } from '../eventlog/detect.ts';

/** Quote header versions whose first two bytes (little-endian) mark a raw quote: SGX 3, TDX 4 and 5. */
function startsLikeQuote(b: Uint8Array): boolean {
  return b.length >= 2 && b[1] === 0 && (b[0] === 3 || b[0] === 4 || b[0] === 5);
}

/**
 * The quote inside evidence files other projects write: dstack's GetQuote JSON and attestation
 * (JSON or attestation.bin), Confidential Containers' TDX evidence ("quote") and Azure TDX vTPM
 * evidence ("td_quote"), or any JSON whose "quote" is a quote in hex or base64. Undefined when
 * `raw` is none of them.
 */
function quoteInside(raw: Uint8Array): Uint8Array | undefined {
  const first = raw.find((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
  if (first === 0x7b) {
    try {
      const o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw)) as Record<string, unknown>;
      for (const key of ['td_quote', 'quote']) {
        const v = o[key];
        if (typeof v !== 'string') continue;
        const b = /^(0x)?[0-9a-fA-F]+$/.test(v) ? fromHex(v.replace(/^0x/, '')) : fromBase64(v);
        if (b && startsLikeQuote(b)) return b;
      }
    } catch {
      return undefined;
    }
  } else if (raw[0] !== 0 || raw[1] !== 0) return undefined;
  try {
    return readEventLogFile(raw).quote;
  } catch {
    return undefined;
  }
}

/**
 * Reads a quote file: the raw bytes configfs-tsm or a quote API returns, the same bytes as base64
 * or hex text (how quotes travel in JSON evidence, tickets and logs), or an evidence file holding
 * one (see quoteInside). Raw bytes win: anything else is tried only when the file does not start
 * like a quote.
 */
export async function readQuoteFile(path: string, what = 'quote file'): Promise<Uint8Array> {
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (startsLikeQuote(raw)) return raw;
  const embedded = quoteInside(raw);
  if (embedded) return embedded;
  const text = new TextDecoder('latin1').decode(raw).trim();
  const decoded = /^(0x)?[0-9a-fA-F\s]+$/.test(text) ? fromHex(text.replace(/^0x/, '').replace(/\s+/g, '')) : fromBase64(text);
  return decoded && startsLikeQuote(decoded) ? decoded : raw;
}
