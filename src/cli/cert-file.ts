/** Reading certificate files given on the command line. */
import { readFile } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';
import { UsageError } from './io.ts';
import { OID_DSTACK_QUOTE, OID_RATLS_EVIDENCE } from '../ratls/extension.ts';
import { OID_DSTACK_ATTESTATION } from '../ratls/dstack-evidence.ts';

/** The certificate picked from a file, and a note when the file held more than one. */
export interface CertificateInput {
  der: Uint8Array;
  /** Which certificate of several was taken, and why; undefined for a single certificate. */
  note?: string;
}

const EVIDENCE_OIDS = new Set([OID_RATLS_EVIDENCE, OID_DSTACK_QUOTE, OID_DSTACK_ATTESTATION]);
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every PEM certificate block in `text`, in order. */
function pemBlocks(text: string): string[] {
  return text.match(PEM_BLOCK) ?? [];
}

/** PEM blocks inside the string values of a JSON document (dstack's GetTlsKey answer, for one). */
function pemBlocksInJson(text: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return [];
  }
  const out: string[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > 8 || out.length > 64) return;
    if (typeof v === 'string') out.push(...pemBlocks(v));
    else if (Array.isArray(v)) v.forEach((x) => walk(x, depth + 1));
    else if (v && typeof v === 'object') Object.values(v).forEach((x) => walk(x, depth + 1));
  };
  walk(doc, 0);
  return out;
}

interface Candidate {
  der: Uint8Array;
  subject: string;
  evidence: boolean;
  ca: boolean;
}

function candidate(der: Uint8Array): Candidate | undefined {
  try {
    const c = new x509.X509Certificate(der.slice().buffer);
    const bc = c.getExtension(x509.BasicConstraintsExtension);
    return { der, subject: c.subject, evidence: c.extensions.some((e) => EVIDENCE_OIDS.has(e.type)), ca: bc?.ca === true };
  } catch {
    return undefined;
  }
}

/**
 * Picks the RA-TLS leaf of a chain: the certificate carrying evidence, preferring one that is not a
 * CA (dstack hands out leaf + app CA); without evidence anywhere, the first end-entity certificate.
 */
function pick(path: string, all: Candidate[]): CertificateInput {
  if (all.length === 1) return { der: all[0]!.der };
  const withEvidence = all.filter((c) => c.evidence);
  const pool = withEvidence.length > 0 ? withEvidence : all;
  const chosen = pool.find((c) => !c.ca) ?? pool[0]!;
  const n = all.indexOf(chosen) + 1;
  const why = withEvidence.length > 0 ? 'the one carrying RA-TLS evidence' : 'none carries RA-TLS evidence, so the first end-entity certificate';
  return { der: chosen.der, note: `${path} holds ${all.length} certificates; verifying #${n} (${chosen.subject}), ${why}.` };
}

/**
 * Reads a certificate file: DER, PEM (a single certificate or a chain, in any order), or JSON whose
 * strings hold PEM certificates. Unreadable input is a usage error.
 */
export async function readCertificateInput(path: string): Promise<CertificateInput> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw new UsageError(`Cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
  // DER first: an RA-TLS certificate's own evidence may hold PEM text (the PCK chain of its quote)
  if (raw[0] === 0x30) return { der: new Uint8Array(raw) };
  const text = raw.toString('latin1');
  if (!text.includes('-----BEGIN CERTIFICATE-----')) return { der: new Uint8Array(raw) };
  const first = text.trimStart()[0];
  const blocks = first === '{' || first === '[' ? pemBlocksInJson(raw.toString('utf8')) : pemBlocks(text);
  const certs: Candidate[] = [];
  for (const b of blocks) {
    let der: Uint8Array;
    try {
      der = new Uint8Array(x509.PemConverter.decodeFirst(b));
    } catch {
      continue;
    }
    const c = candidate(der);
    // A block that does not parse is kept only when it is the sole one: the verifier then names the fault.
    if (c) certs.push(c);
    else if (blocks.length === 1) return { der };
  }
  if (certs.length === 0) throw new UsageError(`${path} holds no readable PEM certificate.`);
  return pick(path, certs);
}

/** Reads a certificate file (see {@link readCertificateInput}) and returns the chosen certificate's DER. */
export async function readCertificateFile(path: string): Promise<Uint8Array> {
  return (await readCertificateInput(path)).der;
}
