/**
 * Configuration decides what ratls trusts: `ratls serve`'s config file (routes, what is published),
 * the client policy of `ratls verify` and `ratls connect` (and the roots it names), the attestation
 * service's config, policy directory and policy files. These were read even when every user could
 * write them (or the directory holding them), so any local user could loosen the policy or add a
 * root of their own. Now they are refused with PATH_UNTRUSTED unless only their owner (this user or
 * root) can write them and no directory above them is writable by others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, copyFileSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../../helpers/cli.ts';
import { loadPolicyFile, resolveCliPolicy } from '../../../src/policy/load.ts';
import { loadPolicies } from '../../../src/service/policies.ts';
import { readServiceConfigFile, resolveServiceConfig } from '../../../src/service/config.ts';
import { loadServeConfig } from '../../../src/proxy/config.ts';

const asRoot = process.getuid?.() === 0;
const OTHER = 4242;
const BUNDLED = resolve(import.meta.dirname, '../../../config/policies');

let base: string;
/** Directories only we can write, holding a good policy and good config files. */
let good: string;
let configs: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ratls-config-trust-'));
  chmodSync(base, 0o755);
  good = join(base, 'good');
  mkdirSync(good, { mode: 0o755 });
  copyFileSync(join(BUNDLED, 'default.yaml'), join(good, 'default.yaml'));
  configs = join(base, 'configs');
  mkdirSync(configs, { mode: 0o755 });
  writeFileSync(join(configs, 'serve.yaml'), 'log:\n  level: warn\n');
  writeFileSync(join(configs, 'service.yaml'), 'listen: 127.0.0.1:0\n');
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A copy of `file` (a policy or config file above) at `path`, with `mode`. */
function copyAs(file: string, path: string, mode: number): string {
  copyFileSync(join(file === 'default.yaml' ? good : configs, file), path);
  chmodSync(path, mode);
  return path;
}

/** A directory every user may write to (no sticky bit), holding a private copy of `file`. */
function inOpenDirectory(name: string, file: string): string {
  const dir = join(base, name);
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  return copyAs(file, join(dir, file), 0o644);
}

/** Runs a CLI command that must refuse before it connects or listens (a 10 s bound keeps a regression from hanging). */
async function refusedFast(...args: string[]): Promise<{ code: number; err: string }> {
  const timeout = new Promise<{ code: number; err: string }>((r) => setTimeout(() => r({ code: -1, err: 'still running after 10 s' }), 10_000).unref());
  return Promise.race([runCli(...args), timeout]);
}

describe('files and directories others can write are refused', () => {
  it('baseline: files and directories only their owner can write are used', () => {
    expect(loadPolicyFile(join(good, 'default.yaml')).appraisal.allowDebug).toBe(false);
    expect(loadPolicies(good).byName.has('default')).toBe(true);
    expect(loadServeConfig({ file: join(configs, 'serve.yaml') }).log.level).toBe('warn');
    expect(readServiceConfigFile(join(configs, 'service.yaml')).listen).toBe('127.0.0.1:0');
    // a symbolic link of our own to a good file is fine for configuration
    symlinkSync(join(good, 'default.yaml'), join(base, 'policy-link.yaml'));
    expect(loadPolicyFile(join(base, 'policy-link.yaml')).appraisal.allowDebug).toBe(false);
  });

  it('ratls verify and ratls connect: a world-writable policy file, or one in a world-writable directory', async () => {
    const ww = copyAs('default.yaml', join(base, 'ww-policy.yaml'), 0o666);
    expect(() => resolveCliPolicy({ policy: ww })).toThrow(expect.objectContaining({ code: 'PATH_UNTRUSTED' }));
    const v = await refusedFast('verify', 'https://127.0.0.1:1', '--policy', ww);
    expect(v.code).toBe(2);
    expect(v.err).toContain(`The policy file ${ww} is writable by every user (mode 0666)`);
    expect(v.err).toContain('[PATH_UNTRUSTED]');
    const c = await refusedFast('connect', '--upstream', 'https://127.0.0.1:1', '--listen', '127.0.0.1:0', '--policy', ww);
    expect(c.code).toBe(2);
    expect(c.err).toContain('[PATH_UNTRUSTED]');

    const inOpen = inOpenDirectory('open-policies', 'default.yaml');
    const v2 = await refusedFast('verify', 'https://127.0.0.1:1', '--policy', inOpen);
    expect(v2.code).toBe(2);
    expect(v2.err).toContain(`lies in ${join(base, 'open-policies')}, which is writable by every user`);
  });

  it('a trusted root file that others can write, named by a policy or by --root', async () => {
    const pem = join(base, 'ww-root.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n');
    chmodSync(pem, 0o666);
    const policy = join(base, 'names-ww-root.yaml');
    writeFileSync(policy, `version: 1\ntrustedRoots: [ww-root.pem]\n`);
    expect(() => loadPolicyFile(policy)).toThrow(expect.objectContaining({ code: 'PATH_UNTRUSTED' }));
    const r = await refusedFast('verify', 'https://127.0.0.1:1', '--root', pem);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`The trusted root certificate file ${pem} is writable by every user`);
  });

  it('ratls serve: a world-writable config file', async () => {
    const ww = copyAs('serve.yaml', join(base, 'ww-serve.yaml'), 0o666);
    expect(() => loadServeConfig({ file: ww })).toThrow(/writable by every user.*\[PATH_UNTRUSTED\]/);
    const r = await refusedFast('serve', '--config', ww, '--listen', '127.0.0.1:0', '--simulate', '--sim-dir', join(base, 'sim'));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`The config file ${ww} is writable by every user (mode 0666)`);
  });

  it('ratls attest-service: a world-writable policy directory, policy file, config file or admin token file', () => {
    const openDir = join(base, 'open-service-policies');
    mkdirSync(openDir);
    copyAs('default.yaml', join(openDir, 'default.yaml'), 0o644);
    chmodSync(openDir, 0o777);
    expect(() => loadPolicies(openDir)).toThrow(expect.objectContaining({ code: 'PATH_UNTRUSTED', message: expect.stringContaining('The policy directory') }));

    const wwFileDir = join(base, 'ww-file-policies');
    mkdirSync(wwFileDir, { mode: 0o755 });
    copyAs('default.yaml', join(wwFileDir, 'default.yaml'), 0o666);
    expect(() => loadPolicies(wwFileDir)).toThrow(expect.objectContaining({ code: 'PATH_UNTRUSTED' }));

    const wwConfig = copyAs('service.yaml', join(base, 'ww-service.yaml'), 0o666);
    expect(() => readServiceConfigFile(wwConfig)).toThrow(/writable by every user.*\[PATH_UNTRUSTED\]/);

    const token = inOpenDirectory('open-token', 'service.yaml');
    writeFileSync(token, 'a-long-enough-admin-token-0123456789\n');
    chmodSync(token, 0o600);
    expect(() => resolveServiceConfig({ adminTokenFile: token }, {})).toThrow(/writable by every user.*\[PATH_UNTRUSTED\]/);
  });

  it.runIf(asRoot)('files owned by another user, or writable by a group that is not ours, are refused', () => {
    const theirs = copyAs('default.yaml', join(base, 'their-policy.yaml'), 0o644);
    chownSync(theirs, OTHER, OTHER);
    expect(() => loadPolicyFile(theirs)).toThrow(
      expect.objectContaining({ code: 'PATH_UNTRUSTED', message: expect.stringContaining(`belongs to uid ${OTHER}`) }),
    );

    const groupWritable = copyAs('default.yaml', join(base, 'group-policy.yaml'), 0o664);
    chownSync(groupWritable, 0, OTHER);
    expect(() => loadPolicyFile(groupWritable)).toThrow(expect.objectContaining({ message: expect.stringContaining(`writable by group ${OTHER}`) }));
    // our own group may write (per-user groups, umask 002)
    chownSync(groupWritable, 0, 0);
    expect(loadPolicyFile(groupWritable).appraisal.allowDebug).toBe(false);

    const linkDir = join(base, 'links');
    mkdirSync(linkDir, { mode: 0o1777 });
    chmodSync(linkDir, 0o1777);
    const link = join(linkDir, 'policy.yaml');
    symlinkSync(join(good, 'default.yaml'), link);
    chownSync(linkDir, 0, 0);
    // a link another user planted decides where the policy comes from
    lchownSync(link, OTHER, OTHER);
    expect(() => loadPolicyFile(link)).toThrow(
      expect.objectContaining({ message: expect.stringContaining(`through the symbolic link ${link}, which belongs to uid ${OTHER}`) }),
    );
  });
});
