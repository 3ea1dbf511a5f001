/**
 * Constants of the TCG PC Client crypto-agile event log as TDX firmware (TDVF/OVMF, td-shim) writes
 * it into the CCEL area: event types, digest algorithms, and the TDX measurement registers the
 * log's MR index names. Browser-safe.
 */

/** Event types (TCG PC Client Platform Firmware Profile, section 10.4.1). */
export const EV = {
  PREBOOT_CERT: 0x0,
  POST_CODE: 0x1,
  UNUSED: 0x2,
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  ACTION: 0x5,
  EVENT_TAG: 0x6,
  S_CRTM_CONTENTS: 0x7,
  S_CRTM_VERSION: 0x8,
  CPU_MICROCODE: 0x9,
  PLATFORM_CONFIG_FLAGS: 0xa,
  TABLE_OF_DEVICES: 0xb,
  COMPACT_HASH: 0xc,
  IPL: 0xd,
  IPL_PARTITION_DATA: 0xe,
  NONHOST_CODE: 0xf,
  NONHOST_CONFIG: 0x10,
  NONHOST_INFO: 0x11,
  OMIT_BOOT_DEVICE_EVENTS: 0x12,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EFI_GPT_EVENT: 0x80000006,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EFI_HANDOFF_TABLES: 0x80000009,
  EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EFI_HANDOFF_TABLES2: 0x8000000b,
  EFI_VARIABLE_BOOT2: 0x8000000c,
  EFI_GPT_EVENT2: 0x8000000d,
  EFI_HCRTM_EVENT: 0x80000010,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
} as const;

const EV_NAMES = new Map<number, string>(Object.entries(EV).map(([k, v]) => [v, `EV_${k}`]));
/** dstack's own runtime event type (its RTMR3 events), not a TCG type. */
export const DSTACK_RUNTIME_EVENT_TYPE = 0x08000001;

/** "EV_SEPARATOR", "EV_EFI_ACTION", ...; unknown types as hex. */
export function eventTypeName(type: number): string {
  if (type === DSTACK_RUNTIME_EVENT_TYPE) return 'DSTACK_RUNTIME_EVENT';
  return EV_NAMES.get(type) ?? `EV_UNKNOWN_0x${type.toString(16).padStart(8, '0')}`;
}

/** TPM_ALG_ID -> digest length and name, for the algorithms a log may carry. */
export const DIGEST_ALGORITHMS: ReadonlyMap<number, { name: string; size: number }> = new Map([
  [0x0004, { name: 'SHA-1', size: 20 }],
  [0x000b, { name: 'SHA-256', size: 32 }],
  [0x000c, { name: 'SHA-384', size: 48 }],
  [0x000d, { name: 'SHA-512', size: 64 }],
  [0x0012, { name: 'SM3-256', size: 32 }],
]);
export const ALG_SHA384 = 0x000c;

/** The four runtime-extendable TDX registers, by the log's MR index (1..4). MR index 0 is MRTD. */
export const RTMR_NAMES = ['RTMR0', 'RTMR1', 'RTMR2', 'RTMR3'] as const;
export type RtmrName = (typeof RTMR_NAMES)[number];

/** "RTMR0" for MR index 1, ...; "MRTD" for 0; "MR<n>" beyond. */
export function registerName(mrIndex: number): string {
  if (mrIndex === 0) return 'MRTD';
  return RTMR_NAMES[mrIndex - 1] ?? `MR${mrIndex}`;
}

/** Tag ids of TCG_PCClientTaggedEvent records met in TDX logs. */
export const TAGGED_EVENT = {
  /** Linux EFI stub: the initrd it loaded (digest of the initrd file). */
  LINUX_INITRD: 0x8f3b22ec,
  /** Linux EFI stub: LOADED_IMAGE::LoadOptions, i.e. the kernel command line (digest of the UTF-16 text). */
  LINUX_LOAD_OPTIONS: 0x8f3b22ed,
  /** Confidential Containers' attestation-agent event log entries ("LEAA" on the wire). */
  COCO_AAEL: 0x4141454c,
  /** ratls-proxy runtime events ("RTLS" on the wire; docs/eventlog.md). */
  RATLS_RUNTIME: 0x534c5452,
} as const;
