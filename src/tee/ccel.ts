/**
 * The TDX guest's boot event log as Linux exposes it: the ACPI "CC Event Log" table
 * (/sys/firmware/acpi/tables/CCEL, 56 bytes) and the log area it points at
 * (/sys/firmware/acpi/tables/data/CCEL, Linux 6.4+; root only). Node-only.
 *
 * CCEL table (ACPI 6.5 5.2.34, GHCI "CC Event Log ACPI Table"), little-endian:
 *   0 Signature "CCEL" | 4 Length (56) | 8 Revision | 9 Checksum (table sums to 0) | 10 OEM ID[6]
 *   | 16 OEM Table ID[8] | 24 OEM Revision | 28 Creator ID | 32 Creator Revision | 36 CC Type (2 = TDX)
 *   | 37 CC Subtype | 38 Reserved[2] | 40 LAML u64 (log area length) | 48 LASA u64 (log area address)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RatlsError } from '../core/errors.ts';
import { parseTcgLog } from '../eventlog/tcg.ts';

/** Where Linux puts ACPI tables. */
export const DEFAULT_ACPI_TABLES = '/sys/firmware/acpi/tables';

/** The fields of the CCEL table a reader needs. */
export interface CcelTable {
  revision: number;
  /** 2 = TDX (0 none, 1 SEV, 3 APTEE, 4 ARM CCA). */
  ccType: number;
  ccSubtype: number;
  oemId: string;
  /** Log area minimum length: the size of the data file. */
  laml: number;
  /** Log area start address (guest physical). */
  lasa: bigint;
}

/** Parses the 56-byte CCEL ACPI table (hostile input). Throws RatlsError EVENTLOG_MALFORMED. */
export function parseCcelTable(b: Uint8Array): CcelTable {
  if (b.length < 56) throw new RatlsError('EVENTLOG_MALFORMED', `The CCEL ACPI table is ${b.length} bytes; it has 56.`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const sig = String.fromCharCode(...b.subarray(0, 4));
  if (sig !== 'CCEL') throw new RatlsError('EVENTLOG_MALFORMED', `The ACPI table has signature "${sig.replace(/[^\x20-\x7e]/g, '?')}", not "CCEL".`);
  const length = dv.getUint32(4, true);
  if (length !== b.length) throw new RatlsError('EVENTLOG_MALFORMED', `The CCEL ACPI table says it is ${length} bytes but ${b.length} were read.`);
  let sum = 0;
  for (const x of b) sum = (sum + x) & 0xff;
  if (sum !== 0) throw new RatlsError('EVENTLOG_MALFORMED', 'The CCEL ACPI table checksum is wrong (the table does not sum to 0).');
  const ccType = b[36]!;
  const laml = Number(dv.getBigUint64(40, true));
  return {
    revision: b[8]!,
    ccType,
    ccSubtype: b[37]!,
    oemId: String.fromCharCode(...b.subarray(10, 16)).trim(),
    laml,
    lasa: dv.getBigUint64(48, true),
  };
}

/** What {@link readCcel} returns. */
export interface CcelBootLog {
  table: CcelTable;
  /** The log up to the end of its last event (the fill after it dropped), as served to clients. */
  log: Uint8Array;
  /** Size of the whole log area. */
  areaBytes: number;
}

/**
 * Reads and checks the boot event log of a TDX guest.
 * @throws RatlsError EVENTLOG_MISSING when the kernel does not expose it (not a TDX guest, older
 *   kernel, not root), EVENTLOG_MALFORMED when it is not a well-formed TDX log.
 */
export async function readCcel(acpiRoot: string = DEFAULT_ACPI_TABLES): Promise<CcelBootLog> {
  const read = async (p: string): Promise<Uint8Array> => {
    try {
      return new Uint8Array(await readFile(p));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new RatlsError(
        'EVENTLOG_MISSING',
        `Cannot read ${p} (${code}): the boot event log needs a TDX guest with Linux 6.4 or later, and root (the ACPI table files are readable by root only).`,
      );
    }
  };
  const table = parseCcelTable(await read(join(acpiRoot, 'CCEL')));
  if (table.ccType !== 2) throw new RatlsError('EVENTLOG_MALFORMED', `The CCEL ACPI table is for confidential-computing type ${table.ccType}, not TDX (2).`);
  const area = await read(join(acpiRoot, 'data', 'CCEL'));
  if (table.laml !== 0 && area.length !== table.laml) {
    throw new RatlsError('EVENTLOG_MALFORMED', `The CCEL log area is ${area.length} bytes but the ACPI table says ${table.laml}.`);
  }
  const parsed = parseTcgLog(area, 'The CCEL boot event log');
  return { table, log: area.slice(0, parsed.usedBytes), areaBytes: area.length };
}
