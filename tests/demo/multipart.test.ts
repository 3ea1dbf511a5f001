/**
 * The demo app's multipart reader takes hostile bodies: it must hash exactly the file's bytes
 * however the body is split into chunks, and refuse truncated, oversized or malformed bodies with
 * 400/413 instead of hanging or throwing anything else.
 */
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type * as http from 'node:http';
import { multipartBoundary, receiveFile } from '../../src/demo/multipart.ts';
import { HttpReply } from '../../src/demo/http.ts';

const B = 'xYz-boundary-0123';

function body(file: Buffer, opts: { name?: string; filename?: string; extraParts?: number; close?: boolean } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from('preamble to ignore\r\n')];
  for (let i = 0; i < (opts.extraParts ?? 0); i++) parts.push(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nvalue ${i}\r\n`));
  parts.push(
    Buffer.from(
      `--${B}\r\nContent-Disposition: form-data; name="${opts.name ?? 'file'}"; filename="${opts.filename ?? 'notes.txt'}"\r\nContent-Type: text/plain\r\n\r\n`,
    ),
  );
  parts.push(file);
  parts.push(Buffer.from(opts.close === false ? `\r\n--${B}\r\n` : `\r\n--${B}--\r\nepilogue`));
  return Buffer.concat(parts);
}

function request(raw: Buffer, chunkSize: number, contentType = `multipart/form-data; boundary=${B}`): http.IncomingMessage {
  const chunks: Buffer[] = [];
  for (let i = 0; i < raw.length; i += chunkSize) chunks.push(raw.subarray(i, i + chunkSize));
  return Object.assign(Readable.from(chunks), { headers: { 'content-type': contentType } }) as unknown as http.IncomingMessage;
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    expect(e).toBeInstanceOf(HttpReply);
    return (e as HttpReply).status;
  }
}

describe('demo multipart reader', () => {
  it('hashes exactly the file bytes for every chunking, including a boundary split across chunks', async () => {
    // bytes that look like boundary fragments and CRLFs inside the file must survive
    const file = Buffer.concat([randomBytes(3000), Buffer.from(`\r\n--${B.slice(0, 8)}\r\n--`), randomBytes(1000)]);
    const want = createHash('sha256').update(file).digest('hex');
    for (const size of [1, 2, 7, 64, 1000, 1_000_000]) {
      const f = await receiveFile(request(body(file, { extraParts: 2 }), size), 'file', { maxBytes: 1 << 20 });
      expect({ size, sha: f.sha256, n: f.size }).toEqual({ size, sha: want, n: file.length });
      expect(f.content?.equals(file)).toBe(true);
      expect(f.filename).toBe('notes.txt');
      expect(f.contentType).toBe('text/plain');
    }
  });

  it('keeps only hash and size above keepBytes, and strips paths and control characters from names', async () => {
    const file = randomBytes(50_000);
    const f = await receiveFile(request(body(file, { filename: '../../etc/pass\x07wd' }), 4096), 'file', { maxBytes: 1 << 20, keepBytes: 1000 });
    expect(f.content).toBeUndefined();
    expect(f.size).toBe(50_000);
    expect(f.filename).toBe('passwd');
  });

  it.each([
    ['no closing boundary (truncated)', body(Buffer.from('abc'), { close: false }), 400],
    ['cut in the middle of the file', body(randomBytes(5000)).subarray(0, 2000), 400],
    ['no file in the named field', body(Buffer.from('abc'), { name: 'other' }), 400],
    ['more than 32 parts', body(Buffer.from('abc'), { extraParts: 40 }), 400],
    ['a part header longer than 16 KiB', Buffer.from(`--${B}\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\nx\r\n--${B}--`), 400],
    ['a header line without a colon', Buffer.from(`--${B}\r\nContent-Disposition form-data\r\n\r\nx\r\n--${B}--`), 400],
    ['a part without a name', Buffer.from(`--${B}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--${B}--`), 400],
    ['random bytes', randomBytes(10_000), 400],
    ['empty body', Buffer.alloc(0), 400],
  ])('refuses %s with 400', async (_what, raw, code) => {
    expect(await status(receiveFile(request(raw, 333), 'file', { maxBytes: 1 << 20 }))).toBe(code);
  });

  it('refuses a body over the limit with 413, declared or counted', async () => {
    const raw = body(randomBytes(10_000));
    expect(await status(receiveFile(request(raw, 512), 'file', { maxBytes: 5000 }))).toBe(413);
    const declared = Object.assign(Readable.from([]), { headers: { 'content-type': `multipart/form-data; boundary=${B}`, 'content-length': '999999' } });
    expect(await status(receiveFile(declared as unknown as http.IncomingMessage, 'file', { maxBytes: 5000 }))).toBe(413);
  });

  it('reads boundaries only from multipart/form-data content types', () => {
    expect(multipartBoundary(`multipart/form-data; boundary=${B}`)).toBe(B);
    expect(multipartBoundary('multipart/form-data; boundary="with space"')).toBe('with space');
    expect(multipartBoundary('application/json')).toBeUndefined();
    expect(multipartBoundary('multipart/form-data')).toBeUndefined();
    expect(multipartBoundary(`multipart/form-data; boundary=${'a'.repeat(71)}`)).toBeUndefined();
    expect(multipartBoundary(undefined)).toBeUndefined();
  });
});
