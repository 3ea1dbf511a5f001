/** Reading certificate files given on the command line. */
import { readFile } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';
import { UsageError } from './io.ts';

/** Reads a certificate file in PEM (the first certificate) or DER; unreadable input is a usage error. */
export async function readCertificateFile(path: string): Promise<Uint8Array> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw new UsageError(`Cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
  const text = raw.toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    try {
      return new Uint8Array(x509.PemConverter.decodeFirst(text));
    } catch {
      throw new UsageError(`${path} holds no readable PEM certificate.`);
    }
  }
  return new Uint8Array(raw);
}
