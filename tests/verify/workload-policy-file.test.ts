/** The `workload:` section of policy files: every key, the forms of a model pin, strict errors, and a YAML round trip. */
import { describe, expect, it } from 'vitest';
import { parsePolicy, policyToYaml } from '../../src/verify/policy-file.ts';

const D = 'a'.repeat(64);

describe('policy files: workload', () => {
  it('reads every key into the appraisal policy', () => {
    const p = parsePolicy(`
workload:
  requireEventLog: true
  models:
    allowed: ["llama3.2:1b", "qwen:0.5b@sha256:${D.toUpperCase()}", { name: "phi3:mini", digest: "${D}" }]
    required: [{ name: "llama3.2:1b" }]
  openWebui: { versions: ["0.6.5"], imageDigests: ["sha256:${D}"] }
  ollama: { versions: ["0.17.7"] }
  proxy: { versions: ["0.1.0"], configDigests: ["${'B'.repeat(96)}"] }
  images: { searxng: ["sha256:${D}"] }
  boot: { kernelCmdline: ["console=hvc0 root=/dev/vda1"], kernelCmdlineDigest: ["${'c'.repeat(96)}"] }
  dstack: { compose-hash: ["${D}"] }
`).appraisal.workload;
    expect(p).toEqual({
      requireEventLog: true,
      allowedModels: [{ name: 'llama3.2:1b' }, { name: 'qwen:0.5b', digest: D }, { name: 'phi3:mini', digest: D }],
      requiredModels: [{ name: 'llama3.2:1b' }],
      openWebuiVersions: ['0.6.5'],
      ollamaVersions: ['0.17.7'],
      proxyVersions: ['0.1.0'],
      proxyConfigDigests: ['b'.repeat(96)],
      imageDigests: { 'open-webui': [`sha256:${D}`], searxng: [`sha256:${D}`] },
      kernelCmdlines: ['console=hvc0 root=/dev/vda1'],
      kernelCmdlineDigests: ['c'.repeat(96)],
      dstackEvents: { 'compose-hash': [D] },
    });
  });

  it('round-trips through policyToYaml', () => {
    const p = parsePolicy(`workload: { models: { allowed: [{ name: m, digest: "${D}" }] }, ollama: { versions: ["0.17.7"], imageDigests: ["sha256:${D}"] } }`);
    expect(parsePolicy(policyToYaml(p)).appraisal.workload).toEqual(p.appraisal.workload);
  });

  it('refuses unknown keys, empty lists, bad digests and numbers YAML made of versions', () => {
    const bad: Array<[string, RegExp]> = [
      ['workload: { model: [] }', /workload\.model"/],
      ['workload: { models: { allowed: [] } }', /empty list/],
      ['workload: { models: { allowed: ["m@sha256:12"] } }', /manifest digest/],
      ['workload: { ollama: { versions: [0.5] } }', /looks like a number/],
      ['workload: { proxy: { configDigests: ["ab"] } }', /96 hex digits/],
      ['workload: { openWebui: { imageDigests: ["abc"] } }', /sha256:/],
      ['workload: { models: { allowed: [{ name: m, tag: x }] } }', /\.tag"/],
    ];
    for (const [text, re] of bad) expect(() => parsePolicy(text)).toThrow(re);
  });
});
