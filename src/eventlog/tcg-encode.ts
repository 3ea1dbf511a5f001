/**
 * Writes TCG crypto-agile logs with one SHA-384 bank: the Spec ID header and TCG_PCR_EVENT2
 * records (the layout src/eventlog/tcg.ts reads). Used for ratls-proxy's runtime log and the
 * simulated TD's boot log. Browser-safe.
 */
import { concatBytes } from '../core/bytes.ts';
import { u32le } from './reader.ts';
import { ALG_SHA384, EV } from './tcg-types.ts';

const enc = new TextEncoder();

/** The Spec ID header (TCG PFP 10.4.5.1): "Spec ID Event03", spec 2.0, UINTN = 8 bytes, SHA-384 only. */
export function specIdHeader(vendorInfo: string, firstMrIndex = 0): Uint8Array {
  const vendor = enc.encode(vendorInfo);
  if (vendor.length > 255) throw new RangeError('vendor info is at most 255 bytes');
  const spec = concatBytes(
    enc.encode('Spec ID Event03\0'),
    u32le(0), // platform class: client
    Uint8Array.of(0, 2, 0, 2), // spec 2.0, errata 0, UINTN = 8 bytes
    u32le(1),
    Uint8Array.of(ALG_SHA384 & 0xff, ALG_SHA384 >> 8, 48, 0),
    Uint8Array.of(vendor.length),
    vendor,
  );
  return concatBytes(u32le(firstMrIndex), u32le(EV.NO_ACTION), new Uint8Array(20), u32le(spec.length), spec);
}

/** One TCG_PCR_EVENT2 record with a single SHA-384 digest. */
export function tcgRecord(mrIndex: number, eventType: number, sha384: Uint8Array, data: Uint8Array): Uint8Array {
  if (sha384.length !== 48) throw new RangeError('a SHA-384 digest is 48 bytes');
  return concatBytes(u32le(mrIndex), u32le(eventType), u32le(1), Uint8Array.of(ALG_SHA384 & 0xff, ALG_SHA384 >> 8), sha384, u32le(data.length), data);
}

/** TCG_PCClientTaggedEvent { u32 id, u32 size, data }. */
export function taggedEvent(id: number, data: Uint8Array): Uint8Array {
  return concatBytes(u32le(id), u32le(data.length), data);
}
