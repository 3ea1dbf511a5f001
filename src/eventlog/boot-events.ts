/**
 * Names the boot events a person cares about (firmware volumes, secure-boot and boot variables,
 * bootloaders, kernel, initrd, kernel command line) and, where the TCG or firmware rule is known,
 * recomputes an event's digest from its data so that a tampered event is named, not just its
 * register. Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import { constantTimeEqual, toHex } from '../core/bytes.ts';
import { asciiText, utf16le } from './reader.ts';
import { EV, TAGGED_EVENT, eventTypeName, registerName } from './tcg-types.ts';
import { sha384Of, type TcgEvent } from './tcg.ts';
import { sha384 } from './sha384.ts';
import {
  QEMU_KERNEL_LOADER_FS_GUID,
  blob2Description,
  blob2Range,
  imageLoadPath,
  loadOptionText,
  looseAscii,
  parseUefiVariable,
  type UefiVariable,
} from './uefi.ts';

/** What kind of thing a boot event measured. */
export type BootEventKind =
  | 'firmware'
  | 'handoff-table'
  | 'secure-boot-variable'
  | 'variable'
  | 'boot-variable'
  | 'authority'
  | 'bootloader'
  | 'kernel'
  | 'initrd'
  | 'kernel-cmdline'
  | 'grub-command'
  | 'file'
  | 'shim'
  | 'separator'
  | 'action'
  | 'acpi'
  | 'config'
  | 'gpt'
  | 'runtime'
  | 'no-action'
  | 'other';

/** Kinds shown as "named boot events" in reports. */
export const NAMED_KINDS: ReadonlySet<BootEventKind> = new Set([
  'firmware',
  'secure-boot-variable',
  'boot-variable',
  'authority',
  'bootloader',
  'kernel',
  'initrd',
  'kernel-cmdline',
  'grub-command',
]);

/** A boot event as reports show it. */
export interface DescribedEvent {
  /** Record number in its log (1 = first event after the Spec ID header). */
  index: number;
  /** RTMR0..RTMR3 ("MRTD" or "MR<n>" only in malformed logs). */
  register: string;
  /** EV_... name. */
  type: string;
  kind: BootEventKind;
  /** Short label: "Fv(…) base 0xffe00000 length 0x20000", "SecureBoot", "\EFI\BOOT\BOOTX64.EFI". */
  label: string;
  /** Lower-case hex SHA-384 digest the log extends ("" for EV_NO_ACTION without one). */
  digest: string;
  /** The text the event measured, when the log holds it (GRUB's kernel command line, an action string). */
  text?: string;
  /**
   * 'data': the digest was recomputed from the event's data and matches. 'external': the digest
   * covers something outside the log (a firmware volume, a kernel image), so only replay checks it.
   */
  digestCheck: 'data' | 'external';
}

const SECURE_BOOT_VARIABLES = new Set(['SecureBoot', 'PK', 'KEK', 'db', 'dbx', 'dbt', 'dbr', 'SetupMode', 'AuditMode', 'DeployedMode']);

function where(e: TcgEvent, what: string): string {
  return `${what}: ${registerName(e.mrIndex)} event #${e.index} (${eventTypeName(e.eventType)})`;
}

/**
 * Describes an event and checks its digest against its data where the rule is known.
 * @throws RatlsError EVENTLOG_DIGEST_MISMATCH when the data does not hash to the logged digest,
 *   EVENTLOG_MALFORMED when the data is not the structure its type requires.
 */
export async function describeBootEvent(e: TcgEvent, what = 'The boot event log'): Promise<DescribedEvent> {
  const d = sha384Of(e);
  const base = { index: e.index, register: registerName(e.mrIndex), type: eventTypeName(e.eventType), digest: d ? toHex(d) : '' };
  const info = classify(e, what);
  if (e.eventType === EV.NO_ACTION || !d) return { ...base, ...info.describe, digestCheck: 'external' };
  const candidates = info.preimages;
  if (candidates.length === 0) return { ...base, ...info.describe, digestCheck: 'external' };
  for (const p of candidates) if (constantTimeEqual(await sha384(p), d)) return { ...base, ...info.describe, digestCheck: 'data' };
  if (info.strict) {
    throw new RatlsError(
      'EVENTLOG_DIGEST_MISMATCH',
      `${where(e, what)} "${info.describe.label.slice(0, 80)}": its data does not hash to the logged digest ${toHex(d).slice(0, 16)}…; the event was altered.`,
    );
  }
  return { ...base, ...info.describe, digestCheck: 'external' };
}

interface Classified {
  describe: { kind: BootEventKind; label: string; text?: string };
  /** Byte strings whose SHA-384 may be the digest; empty when the digest covers something else. */
  preimages: Uint8Array[];
  /** A known rule: no candidate matching means the event was altered. */
  strict: boolean;
}

function variable(e: TcgEvent, what: string): UefiVariable {
  try {
    return parseUefiVariable(e.data, where(e, what));
  } catch (err) {
    if (err instanceof RatlsError) throw new RatlsError('EVENTLOG_MALFORMED', `${err.message} (not a UEFI_VARIABLE_DATA structure)`);
    throw err;
  }
}

function classify(e: TcgEvent, what: string): Classified {
  const data = e.data;
  const external = (kind: BootEventKind, label: string, text?: string): Classified => ({
    describe: text === undefined ? { kind, label } : { kind, label, text },
    preimages: [],
    strict: false,
  });
  switch (e.eventType) {
    case EV.NO_ACTION:
      return external('no-action', looseAscii(data, 40) ?? `${data.length} bytes`);
    case EV.SEPARATOR:
      return { describe: { kind: 'separator', label: toHex(data.subarray(0, 8)) }, preimages: [data], strict: true };
    case EV.ACTION:
    case EV.EFI_ACTION: {
      const text = asciiText(data) ?? looseAscii(data) ?? `${data.length} bytes`;
      return { describe: { kind: 'action', label: text, text }, preimages: [data], strict: true };
    }
    case EV.EFI_VARIABLE_DRIVER_CONFIG: {
      const v = variable(e, what);
      const kind = SECURE_BOOT_VARIABLES.has(v.name) ? 'secure-boot-variable' : 'variable';
      const label = v.name === 'SecureBoot' && v.value.length === 1 ? `SecureBoot = ${v.value[0] === 1 ? 'enabled' : 'disabled'}` : v.name;
      return { describe: { kind, label }, preimages: [data], strict: true };
    }
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2: {
      const v = variable(e, what);
      let label = v.name;
      if (/^Boot[0-9A-Fa-f]{4}$/.test(v.name)) {
        const opt = loadOptionText(v.value);
        if (opt) label += ` "${opt.description}" ${opt.path}`;
      } else if (v.name === 'BootOrder' && v.value.length % 2 === 0) {
        const order: string[] = [];
        for (let i = 0; i + 1 < v.value.length && order.length < 32; i += 2) order.push((v.value[i]! | (v.value[i + 1]! << 8)).toString(16).padStart(4, '0'));
        label += ` ${order.join(',')}`;
      }
      // edk2 hashes only VariableData for boot variables; the PFP says the whole structure: accept both.
      return { describe: { kind: 'boot-variable', label }, preimages: [v.value, data], strict: true };
    }
    case EV.EFI_VARIABLE_AUTHORITY: {
      const v = variable(e, what);
      return { describe: { kind: 'authority', label: v.name }, preimages: [data, v.value], strict: true };
    }
    case EV.EFI_PLATFORM_FIRMWARE_BLOB2: {
      const desc = blob2Description(data) ?? 'firmware blob';
      const range = blob2Range(data);
      return external('firmware', range ? `${desc} base ${range.base} length ${range.length}` : desc);
    }
    case EV.EFI_PLATFORM_FIRMWARE_BLOB:
      return external('firmware', 'firmware blob');
    case EV.EFI_HANDOFF_TABLES2:
      return external('handoff-table', blob2Description(data) ?? 'handoff tables');
    case EV.EFI_HANDOFF_TABLES:
      return external('handoff-table', 'handoff tables');
    case EV.EFI_BOOT_SERVICES_APPLICATION:
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER: {
      const path = imageLoadPath(data) ?? '(no device path)';
      const kernel = path.includes(`VenMedia(${QEMU_KERNEL_LOADER_FS_GUID})`) || /(vmlinuz|bzimage)[^/\\]*$/i.test(path);
      return external(kernel ? 'kernel' : e.eventType === EV.EFI_BOOT_SERVICES_APPLICATION ? 'bootloader' : 'other', path);
    }
    case EV.EFI_GPT_EVENT:
    case EV.EFI_GPT_EVENT2:
      // The PFP hashes UEFI_GPT_DATA, which is the event data.
      return { describe: { kind: 'gpt', label: 'GPT partition table' }, preimages: [data], strict: true };
    case EV.IPL:
      return classifyIpl(data);
    case EV.EVENT_TAG:
      return classifyTag(data);
    case EV.PLATFORM_CONFIG_FLAGS: {
      const text = looseAscii(data, 80) ?? `${data.length} bytes`;
      return external(text.startsWith('ACPI DATA') ? 'acpi' : 'config', text);
    }
    case EV.POST_CODE:
    case EV.S_CRTM_VERSION:
    case EV.S_CRTM_CONTENTS:
      return external('firmware', looseAscii(data, 80) ?? eventTypeName(e.eventType));
    default:
      return external('other', looseAscii(data, 80) ?? `${data.length} bytes`);
  }
}

/** GRUB's measured-text prefixes: upstream ("kernel_cmdline: ") and RHEL-style ("grub_kernel_cmdline "). */
const IPL_PREFIXES: ReadonlyArray<[string, BootEventKind]> = [
  ['kernel_cmdline: ', 'kernel-cmdline'],
  ['grub_cmd: ', 'grub-command'],
  ['grub_kernel_cmdline ', 'kernel-cmdline'],
  ['grub_cmd ', 'grub-command'],
];

function startsWith(data: Uint8Array, prefix: string): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

/** GRUB, shim and RHEL-style GRUB EV_IPL events. */
function classifyIpl(data: Uint8Array): Classified {
  for (const [prefix, kind] of IPL_PREFIXES) {
    if (!startsWith(data, prefix)) continue;
    // GRUB hashes the text after the prefix (RHEL's build with its NUL); whatever the bytes are
    // now, the digest must be one of those, so a changed byte is caught even if it is not text.
    const rest = data.subarray(prefix.length);
    const nul = rest.indexOf(0);
    const body = nul < 0 ? rest : rest.subarray(0, nul);
    const withNul = nul < 0 ? body : rest.subarray(0, nul + 1);
    const text = asciiText(body);
    let shown = text ?? `(${body.length} bytes, not text)`;
    if (prefix === 'grub_kernel_cmdline ' && text !== undefined) shown = text.replace(/^\S+ ?/, '');
    return {
      describe: text === undefined ? { kind, label: shown } : { kind, label: shown, text: shown },
      preimages: [body, withNul],
      strict: true,
    };
  }
  const text = iplText(data);
  if (text === undefined) {
    // systemd-stub (UKI) names the PE section it measures in UTF-16: ".linux", ".initrd", ".cmdline", ...
    const section = utf16Name(data);
    if (section) {
      const kind: BootEventKind = section === '.linux' ? 'kernel' : section === '.initrd' ? 'initrd' : section === '.cmdline' ? 'kernel-cmdline' : 'file';
      return { describe: { kind, label: `UKI section ${section}` }, preimages: [], strict: false };
    }
    return { describe: { kind: 'other', label: `${data.length} bytes` }, preimages: [], strict: false };
  }
  if (/^(MokList|MokListX|MokListTrusted|SbatLevel)$/.test(text)) return { describe: { kind: 'shim', label: text }, preimages: [], strict: false };
  // A bare path is a file GRUB read; its digest covers the file.
  if (/(vmlinuz|bzimage)[^/]*$/i.test(text) || text === 'grub_linuxefi Kernel')
    return { describe: { kind: 'kernel', label: text }, preimages: [], strict: false };
  if (/initr(d|amfs)[^/]*$/i.test(text)) return { describe: { kind: 'initrd', label: text }, preimages: [], strict: false };
  return { describe: { kind: 'file', label: text }, preimages: [], strict: false };
}

/**
 * The text of an EV_IPL event: printable ASCII up to its first NUL. RHEL-style GRUB logs one stray
 * byte after the NUL (its event size is one too large), so at most one byte may follow.
 */
function iplText(data: Uint8Array): string | undefined {
  let end = data.indexOf(0);
  if (end < 0) end = data.length;
  if (data.length - end > 2) return asciiText(data);
  return asciiText(data.subarray(0, end));
}

/** A short UTF-16LE name with its NUL (".linux\0"), or undefined. */
function utf16Name(data: Uint8Array): string | undefined {
  if (data.length < 4 || data.length > 64 || data.length % 2 !== 0) return undefined;
  let s = '';
  for (let i = 0; i + 1 < data.length; i += 2) {
    const c = data[i]! | (data[i + 1]! << 8);
    if (c === 0) return i + 2 === data.length && s.length > 0 ? s : undefined;
    if (c < 0x20 || c > 0x7e) return undefined;
    s += String.fromCharCode(c);
  }
  return undefined;
}

/** TCG_PCClientTaggedEvent { u32 taggedEventID, u32 taggedEventDataSize, data }. */
function classifyTag(data: Uint8Array): Classified {
  if (data.length < 8) return { describe: { kind: 'other', label: 'malformed tagged event' }, preimages: [], strict: false };
  const id = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
  const size = (data[4]! | (data[5]! << 8) | (data[6]! << 16) | (data[7]! << 24)) >>> 0;
  const body = data.subarray(8, 8 + Math.min(size, data.length - 8));
  if (id === TAGGED_EVENT.LINUX_LOAD_OPTIONS) return { describe: { kind: 'kernel-cmdline', label: 'LOADED_IMAGE::LoadOptions' }, preimages: [], strict: false };
  if (id === TAGGED_EVENT.LINUX_INITRD) return { describe: { kind: 'initrd', label: 'Linux initrd' }, preimages: [], strict: false };
  if (id === TAGGED_EVENT.COCO_AAEL || id === TAGGED_EVENT.RATLS_RUNTIME) {
    const label = looseAscii(body, 120) ?? `${body.length} bytes`;
    return { describe: { kind: 'runtime', label }, preimages: [data], strict: true };
  }
  return { describe: { kind: 'other', label: `tag 0x${id.toString(16)}` }, preimages: [], strict: false };
}

/** Candidate LoadOptions digests of a kernel command line, in the forms OVMF builds it. */
export async function loadOptionsDigests(cmdline: string): Promise<string[]> {
  // Older OVMF appends " initrd=initrd" when QEMU passes an initrd; current edk2 prefixes it.
  const forms = [cmdline, `${cmdline} initrd=initrd`, `initrd=initrd ${cmdline}`];
  return Promise.all(forms.map(async (f) => toHex(await sha384(utf16le(f, true)))));
}
