/**
 * A streaming reader for `multipart/form-data` uploads (open-webui's POST /api/v1/files/). It keeps
 * only a hash, the size and (for small files) the bytes, so a 100 MiB upload does not sit in
 * memory. Hostile input is refused with 400 or 413: bounded part headers, a bounded number of
 * parts, a bounded total, and a body that must end with its closing boundary.
 */
import { createHash } from 'node:crypto';
import type * as http from 'node:http';
import { HttpReply } from './http.ts';

export interface UploadedFile {
  filename: string;
  contentType: string;
  size: number;
  /** SHA-256 of the file's bytes, lower-case hex. */
  sha256: string;
  /** The bytes, when the file is at most `keepBytes` long. */
  content?: Buffer;
}

export interface MultipartLimits {
  /** Largest whole request body. */
  maxBytes: number;
  /** Files up to this size keep their bytes (default 8 MiB). */
  keepBytes?: number;
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PARTS = 32;
const MAX_FIELD_BYTES = 64 * 1024;
const bad = (detail: string) => new HttpReply(400, { detail });

/** The boundary of a multipart/form-data content type, or undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))\s*(?:;|$)/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  // RFC 2046 bchars, no trailing space
  return b && /^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/.test(b) ? b : undefined;
}

interface Part {
  name: string;
  filename?: string;
  contentType: string;
  size: number;
  hash?: ReturnType<typeof createHash>;
  chunks: Buffer[];
  keep: boolean;
}

function parsePartHeaders(raw: string): Part {
  let name: string | undefined;
  let filename: string | undefined;
  let contentType = 'application/octet-stream';
  for (const line of raw.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw bad('A multipart part header is malformed.');
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-disposition') {
      if (!/^form-data\b/i.test(value)) throw bad('A multipart part is not form-data.');
      name = /;\s*name="((?:[^"\\]|\\.)*)"/i.exec(value)?.[1] ?? /;\s*name=([^;\s"]+)/i.exec(value)?.[1];
      const fn = /;\s*filename="((?:[^"\\]|\\.)*)"/i.exec(value)?.[1] ?? /;\s*filename=([^;\s"]+)/i.exec(value)?.[1];
      if (fn !== undefined) filename = fn.replace(/\\(.)/g, '$1');
    } else if (key === 'content-type') contentType = value.slice(0, 255);
  }
  if (name === undefined) throw bad('A multipart part has no name.');
  return { name, ...(filename !== undefined ? { filename } : {}), contentType, size: 0, chunks: [], keep: true };
}

/** A file name safe to show: last path segment, no control characters, at most 255 characters. */
function safeName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  return base.replace(/[\x00-\x1f\x7f]/g, '').slice(0, 255) || 'upload';
}

/** Reads a multipart body and returns the part named `field` that carries a file. */
export async function receiveFile(req: http.IncomingMessage, field: string, limits: MultipartLimits): Promise<UploadedFile> {
  const boundary = multipartBoundary(req.headers['content-type']);
  if (!boundary) throw bad('Expected a multipart/form-data body with a boundary.');
  const keepBytes = limits.keepBytes ?? 8 * 1024 * 1024;
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limits.maxBytes) throw new HttpReply(413, { detail: `Upload larger than ${limits.maxBytes} bytes.` });

  const delim = Buffer.from(`\r\n--${boundary}`);
  // Starting with CRLF lets the first delimiter match the same pattern as the others.
  let buf: Buffer = Buffer.from('\r\n');
  let state = 'preamble' as 'preamble' | 'headers' | 'body' | 'after' | 'done';
  let part: Part | undefined;
  let parts = 0;
  let total = 0;
  let file: UploadedFile | undefined;

  const feed = (p: Part, data: Buffer): void => {
    if (data.length === 0) return;
    p.size += data.length;
    p.hash?.update(data);
    if (p.hash === undefined && p.size > MAX_FIELD_BYTES) throw bad(`Form field "${p.name}" is larger than ${MAX_FIELD_BYTES} bytes.`);
    if (p.keep && p.size <= (p.hash ? keepBytes : MAX_FIELD_BYTES)) p.chunks.push(data);
    else {
      p.keep = false;
      p.chunks = [];
    }
  };
  const endPart = (p: Part): void => {
    if (p.hash && p.name === field && !file) {
      file = {
        filename: safeName(p.filename ?? ''),
        contentType: p.contentType,
        size: p.size,
        sha256: p.hash.digest('hex'),
        ...(p.keep ? { content: Buffer.concat(p.chunks) } : {}),
      };
    }
  };

  const step = (): boolean => {
    switch (state) {
      case 'preamble':
      case 'body': {
        const i = buf.indexOf(delim);
        if (i < 0) {
          const safe = buf.length - (delim.length - 1);
          if (safe > 0) {
            if (state === 'body') feed(part!, buf.subarray(0, safe));
            buf = buf.subarray(safe);
          }
          return false;
        }
        if (state === 'body') {
          feed(part!, buf.subarray(0, i));
          endPart(part!);
        }
        buf = buf.subarray(i + delim.length);
        state = 'after';
        return true;
      }
      case 'after': {
        if (buf.length < 2) return false;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          state = 'done';
          return false;
        }
        if (buf[0] !== 0x0d || buf[1] !== 0x0a) throw bad('A multipart boundary is not followed by CRLF.');
        buf = buf.subarray(2);
        state = 'headers';
        return true;
      }
      case 'headers': {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) {
          if (buf.length > MAX_HEADER_BYTES) throw bad('A multipart part header is too long.');
          return false;
        }
        if (i > MAX_HEADER_BYTES) throw bad('A multipart part header is too long.');
        if (++parts > MAX_PARTS) throw bad(`More than ${MAX_PARTS} parts in one upload.`);
        part = parsePartHeaders(buf.subarray(0, i).toString('latin1'));
        if (part.filename !== undefined) part.hash = createHash('sha256');
        buf = buf.subarray(i + 4);
        state = 'body';
        return true;
      }
      case 'done':
        return false;
    }
  };

  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limits.maxBytes) throw new HttpReply(413, { detail: `Upload larger than ${limits.maxBytes} bytes.` });
    if (state === 'done') continue;
    buf = buf.length > 0 ? Buffer.concat([buf, chunk]) : chunk;
    while (step());
  }
  if (state !== 'done') throw bad('The multipart body ends before its closing boundary.');
  if (!file) throw bad(`No file in form field "${field}".`);
  return file;
}
