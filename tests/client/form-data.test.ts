/**
 * The attested fetch with Node's global FormData (what the openai client and most code build): the
 * server must receive a multipart body, not the text "[object FormData]" (found by the real
 * open-webui upload test: the npm undici's fetch does not recognise Node's own FormData class).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData as UndiciFormData } from 'undici';
import { createAttestedFetch } from '../../src/client/index.ts';
import { makeWorld, sessionSpyServer, simPolicy, type SpyServer, type World } from './helpers.ts';

let world: World;
let srv: SpyServer;
const seen: Array<{ type: string; body: string }> = [];

beforeAll(async () => {
  world = await makeWorld();
  srv = await sessionSpyServer(world, {}, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('latin1')));
    req.on('end', () => {
      seen.push({ type: req.headers['content-type'] ?? '', body });
      res.writeHead(200).end('ok');
    });
  });
});
afterAll(async () => {
  await srv?.close();
});

describe('attested fetch and FormData bodies', () => {
  for (const [name, Form] of [
    ['global FormData', globalThis.FormData],
    ["undici's FormData", UndiciFormData],
  ] as const) {
    it(`sends ${name} as multipart/form-data with the file's bytes`, async () => {
      const f = createAttestedFetch(simPolicy(world));
      try {
        const form = new Form();
        form.append('file', new Blob(['hello from a form'], { type: 'text/plain' }), 'hello.txt');
        form.append('purpose', 'assistants');
        const res = await f(`${srv.url}/upload`, { method: 'POST', body: form as FormData });
        expect(res.status).toBe(200);
        const got = seen.at(-1)!;
        const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(got.type)?.[1];
        expect(boundary, got.type).toBeTruthy();
        expect(got.body).toContain(`--${boundary}`);
        expect(got.body).toContain('filename="hello.txt"');
        expect(got.body).toContain('hello from a form');
        expect(got.body).toContain('name="purpose"');
      } finally {
        await f.close();
      }
    });
  }
});
