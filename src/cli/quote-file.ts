/** Reading quote files given on the command line. */
import { readFile } from 'node:fs/promises';
import { fromBase64, fromHex } from '../core/bytes.ts';
import { UsageError } from './io.ts';

/** Quote header versions whose first two bytes (little-endian) mark a raw quote: SGX 3, TDX 4 and 5. */
function startsLikeQuote(b: Uint8Array): boolean {
  return b.length >= 2 && b[1] === 0 && (b[0] === 3 || b[0] === 4 || b[0] === 5);
}

/**
 * Reads a quote file: the raw bytes configfs-tsm or a quote API returns, or the same bytes as base64
 * or hex text (how quotes travel in JSON evidence, tickets and logs). Raw bytes win: text is decoded
 * only when the file does not start like a quote and decodes to something that does.
 */
export async function readQuoteFile(path: string, what = 'quote file'): Promise<Uint8Array> {
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (startsLikeQuote(raw)) return raw;
  const text = new TextDecoder('latin1').decode(raw).trim();
  const decoded = /^(0x)?[0-9a-fA-F\s]+$/.test(text) ? fromHex(text.replace(/^0x/, '').replace(/\s+/g, '')) : fromBase64(text);
  return decoded && startsLikeQuote(decoded) ? decoded : raw;
}
