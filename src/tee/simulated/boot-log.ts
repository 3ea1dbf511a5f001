/**
 * The SIMULATED TD's boot event log: a CCEL-style TCG log shaped like OVMF/TDVF's for a QEMU
 * direct boot (firmware volume, secure-boot variables, ACPI data, boot variables, kernel,
 * LoadOptions = the kernel command line, initrd), so every event-log path runs here. Digests the
 * firmware would take of things outside the log (the firmware volume, the kernel image, ACPI
 * tables) are derived from the world's seed; digests of data in the log are taken of that data,
 * as real firmware does. RTMR0-2 of the simulated quote are this log's replay. Node-only.
 */
import { createHash } from 'node:crypto';
import { concatBytes } from '../../core/bytes.ts';
import { specIdHeader, taggedEvent, tcgRecord } from '../../eventlog/tcg-encode.ts';
import { EV, TAGGED_EVENT } from '../../eventlog/tcg-types.ts';
import { u32le, u64le, utf16le } from '../../eventlog/reader.ts';

/** The kernel command line the simulated firmware hands the kernel (its LoadOptions digest is in RTMR2). */
export const SIMULATED_KERNEL_CMDLINE = 'console=hvc0 root=/dev/vda1 ro ratls.simulated=1';

const sha384 = (...parts: Array<Uint8Array | string>) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const enc = new TextEncoder();

function guidBytes(g: string): Uint8Array {
  const h = g.replace(/-/g, '');
  const b = Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
  // the first three fields are stored little-endian
  return Uint8Array.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';

function uefiVariable(guid: string, name: string, value: Uint8Array): Uint8Array {
  return concatBytes(guidBytes(guid), u64le(name.length), u64le(value.length), utf16le(name, false), value);
}

function blob2(description: string, base: number, length: number): Uint8Array {
  const d = enc.encode(description);
  return concatBytes(Uint8Array.of(d.length), d, u64le(base), u64le(length));
}

/** A device path node. */
function node(type: number, sub: number, body: Uint8Array): Uint8Array {
  const len = 4 + body.length;
  return concatBytes(Uint8Array.of(type, sub, len & 0xff, len >> 8), body);
}
const END = node(0x7f, 0xff, new Uint8Array(0));

/** The simulated boot log for a world seed (hex). */
export function simulatedBootLog(seed: string): Uint8Array {
  const ext = (label: string) => sha384(`ratls-simulated:boot:${label}:`, seed);
  const records: Uint8Array[] = [specIdHeader('', 1)];
  const add = (mr: number, type: number, digest: Uint8Array, data: Uint8Array) => records.push(tcgRecord(mr, type, digest, data));
  const own = (mr: number, type: number, data: Uint8Array) => add(mr, type, sha384(data), data);

  // RTMR0 (MR index 1): configuration firmware and its data
  const tdxTable = concatBytes(Uint8Array.of(9), enc.encode('TdxTable\0'), u64le(1), guidBytes('af96bb93-f2b9-b84e-9462-e0ba74564236'), u64le(0x809000));
  add(1, EV.EFI_HANDOFF_TABLES2, ext('td-hob'), tdxTable);
  add(1, EV.EFI_PLATFORM_FIRMWARE_BLOB2, ext('cfv'), blob2('Fv(SIMULATED-CFV)', 0xffc00000, 0x84000));
  own(1, EV.EFI_VARIABLE_DRIVER_CONFIG, uefiVariable(EFI_GLOBAL_VARIABLE, 'SecureBoot', Uint8Array.of(0)));
  for (const v of ['PK', 'KEK']) own(1, EV.EFI_VARIABLE_DRIVER_CONFIG, uefiVariable(EFI_GLOBAL_VARIABLE, v, new Uint8Array(0)));
  for (const v of ['db', 'dbx']) own(1, EV.EFI_VARIABLE_DRIVER_CONFIG, uefiVariable(IMAGE_SECURITY_DATABASE, v, new Uint8Array(0)));
  own(1, EV.SEPARATOR, new Uint8Array(4));
  for (const t of ['table-loader', 'rsdp', 'tables']) add(1, EV.PLATFORM_CONFIG_FLAGS, ext(`acpi-${t}`), enc.encode('ACPI DATA'));
  const bootOrder = Uint8Array.of(0, 0);
  const kernelPath = concatBytes(node(4, 3, guidBytes('1428f772-b64a-441e-b8c3-9ebdd7f893c7')), node(4, 4, utf16le('kernel', true)), END);
  const boot0000 = concatBytes(u32le(1), Uint8Array.of(kernelPath.length & 0xff, kernelPath.length >> 8), utf16le('SIMULATED direct boot', true), kernelPath);
  // edk2 hashes only the variable's value for boot variables
  add(1, EV.EFI_VARIABLE_BOOT, sha384(bootOrder), uefiVariable(EFI_GLOBAL_VARIABLE, 'BootOrder', bootOrder));
  add(1, EV.EFI_VARIABLE_BOOT, sha384(boot0000), uefiVariable(EFI_GLOBAL_VARIABLE, 'Boot0000', boot0000));

  // RTMR1 (MR index 2): the kernel QEMU hands over, and the boot actions
  own(2, EV.EFI_ACTION, enc.encode('Calling EFI Application from Boot Option'));
  own(2, EV.SEPARATOR, new Uint8Array(4));
  add(2, EV.EFI_BOOT_SERVICES_APPLICATION, ext('kernel'), concatBytes(u64le(0x7e000000), u64le(0xc00000), u64le(0), u64le(kernelPath.length), kernelPath));

  // RTMR2 (MR index 3): the Linux EFI stub's LoadOptions (command line) and initrd
  add(
    3,
    EV.EVENT_TAG,
    sha384(utf16le(SIMULATED_KERNEL_CMDLINE, true)),
    taggedEvent(TAGGED_EVENT.LINUX_LOAD_OPTIONS, enc.encode('LOADED_IMAGE::LoadOptions\0')),
  );
  add(3, EV.EVENT_TAG, ext('initrd'), taggedEvent(TAGGED_EVENT.LINUX_INITRD, enc.encode('Linux initrd\0')));

  own(2, EV.EFI_ACTION, enc.encode('Exit Boot Services Invocation'));
  own(2, EV.EFI_ACTION, enc.encode('Exit Boot Services Returned with Success'));
  return concatBytes(...records);
}

/** RTMR0..2 (hex) after replaying {@link simulatedBootLog}, computed synchronously. */
export function simulatedBootRtmrs(seed: string): [string, string, string] {
  const log = simulatedBootLog(seed);
  const regs = [new Uint8Array(48), new Uint8Array(48), new Uint8Array(48)];
  const dv = new DataView(log.buffer, log.byteOffset, log.byteLength);
  let off = 32 + dv.getUint32(28, true);
  while (off < log.length) {
    const mr = dv.getUint32(off, true);
    const d = log.subarray(off + 14, off + 62);
    regs[mr - 1] = sha384(regs[mr - 1]!, d);
    off += 62 + 4 + dv.getUint32(off + 62, true);
  }
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return [hex(regs[0]!), hex(regs[1]!), hex(regs[2]!)];
}
