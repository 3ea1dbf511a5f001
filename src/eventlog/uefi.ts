/**
 * The UEFI structures boot events carry, read only to name events for people: GUIDs, device paths,
 * UEFI_VARIABLE_DATA, EFI_LOAD_OPTION, UEFI_IMAGE_LOAD_EVENT and the firmware-blob and
 * handoff-table descriptors (UEFI 2.10 chapter 10 for device paths; TCG PFP 1.05 section 10.2).
 * Malformed structures yield undefined or a marked label, never an exception. Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import { toHex } from '../core/bytes.ts';
import { ByteReader, asciiText, utf16leText } from './reader.ts';

/** A GUID as UEFI stores it (first three fields little-endian), in text form. */
export function guidText(b: Uint8Array): string {
  if (b.length !== 16) return '(bad GUID)';
  const h = (from: number, to: number, rev: boolean) => {
    const part = Array.from(b.subarray(from, to));
    return toHex(Uint8Array.from(rev ? part.reverse() : part));
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

/** OVMF's QemuKernelLoaderFs vendor media node: the kernel and initrd QEMU hands over with -kernel/-initrd. */
export const QEMU_KERNEL_LOADER_FS_GUID = '1428f772-b64a-441e-b8c3-9ebdd7f893c7';

/** A device path in the UEFI text form, e.g. PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x0,0x1)/HD(1,GPT,…)/\EFI\BOOT\BOOTX64.EFI. */
export function devicePathText(b: Uint8Array): string {
  const parts: string[] = [];
  let off = 0;
  // Each node is at least 4 bytes, so the walk ends within b.length / 4 steps.
  while (off + 4 <= b.length) {
    const type = b[off]!;
    const sub = b[off + 1]!;
    const len = b[off + 2]! | (b[off + 3]! << 8);
    if (len < 4 || off + len > b.length) {
      parts.push('(malformed)');
      break;
    }
    const body = b.subarray(off + 4, off + len);
    off += len;
    if (type === 0x7f) {
      if (sub === 0xff) break;
      parts.push(',');
      continue;
    }
    parts.push(nodeText(type, sub, body));
  }
  return parts.join('/').replace(/\/,\//g, ',');
}

function u32At(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function nodeText(type: number, sub: number, body: Uint8Array): string {
  const hex = (n: number) => `0x${n.toString(16)}`;
  if (type === 1 && sub === 1 && body.length >= 2) return `Pci(${hex(body[1]!)},${hex(body[0]!)})`;
  if (type === 1 && sub === 4 && body.length >= 16) return `VenHw(${guidText(body.subarray(0, 16))})`;
  if (type === 2 && sub === 1 && body.length >= 8) {
    const hid = u32At(body, 0);
    const uid = u32At(body, 4);
    return hid === 0x0a0341d0 ? `PciRoot(${hex(uid)})` : `Acpi(${hex(hid)},${hex(uid)})`;
  }
  if (type === 3 && sub === 2 && body.length >= 4) return `Scsi(${hex(body[0]! | (body[1]! << 8))},${hex(body[2]! | (body[3]! << 8))})`;
  if (type === 3 && sub === 18 && body.length >= 6)
    return `Sata(${hex(body[0]! | (body[1]! << 8))},${hex(body[2]! | (body[3]! << 8))},${hex(body[4]! | (body[5]! << 8))})`;
  if (type === 3 && sub === 23 && body.length >= 4) return `NVMe(${hex(u32At(body, 0))})`;
  if (type === 4 && sub === 1 && body.length >= 38) {
    const part = u32At(body, 0);
    const fmt = body[36] === 2 ? 'GPT' : body[36] === 1 ? 'MBR' : hex(body[36]!);
    const sig = body[37] === 2 ? guidText(body.subarray(20, 36)) : toHex(body.subarray(20, 24));
    return `HD(${part},${fmt},${sig})`;
  }
  if (type === 4 && sub === 3 && body.length >= 16) return `VenMedia(${guidText(body.subarray(0, 16))})`;
  if (type === 4 && sub === 4) return utf16leText(body);
  if (type === 4 && sub === 6 && body.length >= 16) return `FvFile(${guidText(body.subarray(0, 16))})`;
  if (type === 4 && sub === 7 && body.length >= 16) return `Fv(${guidText(body.subarray(0, 16))})`;
  return `Path(${type},${sub})`;
}

/** UEFI_VARIABLE_DATA: the variable a driver-config, boot or authority event measures. */
export interface UefiVariable {
  vendorGuid: string;
  name: string;
  /** VariableData alone (what edk2 hashes for EV_EFI_VARIABLE_BOOT). */
  value: Uint8Array;
}

/** Reads UEFI_VARIABLE_DATA; throws EVENTLOG_MALFORMED (naming `what`) when the lengths do not add up. */
export function parseUefiVariable(data: Uint8Array, what: string): UefiVariable {
  const r = new ByteReader(data, what);
  const guid = r.take(16, 'variable GUID');
  const nameChars = r.u64('variable name length');
  const valueLen = r.u64('variable data length');
  const name = r.take(nameChars * 2, 'variable name');
  const value = r.take(valueLen, 'variable data');
  if (r.remaining !== 0) throw new RatlsError('EVENTLOG_MALFORMED', `${what}: ${r.remaining} stray bytes follow the UEFI variable.`);
  return { vendorGuid: guidText(guid), name: utf16leText(name), value };
}

/** Boot#### (EFI_LOAD_OPTION): its description and device path; undefined when malformed. */
export function loadOptionText(value: Uint8Array): { description: string; path: string } | undefined {
  if (value.length < 6) return undefined;
  const pathLen = value[4]! | (value[5]! << 8);
  let end = 6;
  while (end + 1 < value.length && (value[end] !== 0 || value[end + 1] !== 0)) end += 2;
  if (end + 1 >= value.length) return undefined;
  const description = utf16leText(value.subarray(6, end));
  const pathStart = end + 2;
  if (pathStart + pathLen > value.length) return undefined;
  return { description, path: devicePathText(value.subarray(pathStart, pathStart + pathLen)) };
}

/** UEFI_IMAGE_LOAD_EVENT: where an EFI application was loaded from. */
export function imageLoadPath(data: Uint8Array): string | undefined {
  if (data.length < 32) return undefined;
  const lo = u32At(data, 24);
  const hi = u32At(data, 28);
  if (hi !== 0 || 32 + lo > data.length) return undefined;
  return devicePathText(data.subarray(32, 32 + lo));
}

/** UEFI_PLATFORM_FIRMWARE_BLOB2 / UEFI_HANDOFF_TABLE_POINTERS2: the leading descriptor text. */
export function blob2Description(data: Uint8Array): string | undefined {
  if (data.length < 1) return undefined;
  const n = data[0]!;
  if (1 + n > data.length) return undefined;
  return asciiText(data.subarray(1, 1 + n));
}

/** UEFI_PLATFORM_FIRMWARE_BLOB2: base and length after the descriptor (hex). */
export function blob2Range(data: Uint8Array): { base: string; length: string } | undefined {
  const n = data[0];
  if (n === undefined || 1 + n + 16 > data.length) return undefined;
  const o = 1 + n;
  const q = (at: number) => `0x${(u32At(data, at + 4) * 0x1_0000_0000 + u32At(data, at)).toString(16)}`;
  return { base: q(o), length: q(o + 8) };
}

/** Printable text of event data: ASCII up to NUL, with embedded NULs shown as spaces. */
export function looseAscii(data: Uint8Array, max = 200): string | undefined {
  const strict = asciiText(data);
  if (strict !== undefined) return strict.slice(0, max);
  let s = '';
  for (const c of data.subarray(0, max)) {
    if (c === 0) s += ' ';
    else if (c >= 0x20 && c <= 0x7e) s += String.fromCharCode(c);
    else return undefined;
  }
  return s.trim();
}
