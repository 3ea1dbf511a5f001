/**
 * The `workload:` section of client policy files: which models, versions, configuration, images and
 * kernel command line the server must present in its replayed event logs (docs/policy.md). Parsed
 * strictly (unknown keys refused, every value checked) into core's WorkloadPolicy. Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import type { ModelPin, WorkloadPolicy } from '../core/types.ts';

const TOP = ['requireEventLog', 'models', 'openWebui', 'ollama', 'proxy', 'images', 'boot', 'dstack'] as const;

function invalid(key: string, why: string): never {
  throw new RatlsError('POLICY_INVALID', `Policy key "${key}": ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function keys(o: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) invalid(prefix + k, `unknown key; allowed here: ${allowed.join(', ')}.`);
}

function strings(v: unknown, key: string, check?: (s: string) => string | undefined): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) invalid(key, 'an empty list would reject every server; remove the key to skip this check.');
  return list.map((x, i) => {
    const k = Array.isArray(v) ? `${key}[${i}]` : key;
    if (typeof x === 'number') invalid(k, 'looks like a number to YAML; quote it ("0.6.5").');
    if (typeof x !== 'string' || x.trim() === '') invalid(k, 'must be a non-empty string.');
    const why = check?.(x.trim());
    if (why) invalid(k, why);
    return x.trim();
  });
}

const hex = (bytes: number) => (s: string) => (new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(s) ? undefined : `must be ${bytes * 2} hex digits.`);
const imageDigest = (s: string) => (/^sha256:[0-9a-fA-F]{64}$/.test(s) ? undefined : 'must be "sha256:" followed by 64 hex digits.');

/** "name", "name@sha256:<hex>", "name@<hex>" or {name, digest}. */
function modelPins(v: unknown, key: string): ModelPin[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) invalid(key, 'an empty list would reject every server that holds a model; remove the key to skip this check.');
  return list.map((x, i) => {
    const k = `${key}[${i}]`;
    let name: unknown;
    let digest: unknown;
    if (typeof x === 'string') {
      const at = x.lastIndexOf('@');
      [name, digest] = at > 0 ? [x.slice(0, at), x.slice(at + 1)] : [x, undefined];
    } else if (isRecord(x)) {
      keys(x, ['name', 'digest'], `${k}.`);
      ({ name, digest } = x);
    } else invalid(k, 'must be a model name, "name@digest", or {name, digest}.');
    if (typeof name !== 'string' || name.trim() === '') invalid(k, 'needs a model name as Ollama lists it, e.g. "llama3.2:latest".');
    if (digest === undefined) return { name: name.trim() };
    if (typeof digest !== 'string' || !/^(sha256:)?[0-9a-fA-F]{64}$/.test(digest.trim()))
      invalid(`${k}.digest`, 'must be the model\'s manifest digest: 64 hex digits, optionally after "sha256:".');
    return {
      name: name.trim(),
      digest: digest
        .trim()
        .toLowerCase()
        .replace(/^sha256:/, ''),
    };
  });
}

function section(doc: Record<string, unknown>, name: string, allowed: readonly string[]): Record<string, unknown> | undefined {
  const v = doc[name];
  if (v === undefined) return undefined;
  if (!isRecord(v)) invalid(`workload.${name}`, 'must be a mapping.');
  keys(v, allowed, `workload.${name}.`);
  return v;
}

/** Parses the `workload` section. @throws RatlsError POLICY_INVALID naming the key. */
export function parseWorkloadPolicy(v: unknown): WorkloadPolicy {
  if (!isRecord(v)) invalid('workload', 'must be a mapping.');
  keys(v, TOP, 'workload.');
  const p: WorkloadPolicy = {};
  if (v.requireEventLog !== undefined) {
    if (typeof v.requireEventLog !== 'boolean') invalid('workload.requireEventLog', 'must be true or false.');
    p.requireEventLog = v.requireEventLog;
  }
  const models = section(v, 'models', ['allowed', 'required']);
  if (models?.allowed !== undefined) p.allowedModels = modelPins(models.allowed, 'workload.models.allowed');
  if (models?.required !== undefined) p.requiredModels = modelPins(models.required, 'workload.models.required');
  const imageDigests: Record<string, string[]> = {};
  const app = (name: 'openWebui' | 'ollama', role: string, versionsKey: 'openWebuiVersions' | 'ollamaVersions') => {
    const s = section(v, name, ['versions', 'imageDigests']);
    if (s?.versions !== undefined) p[versionsKey] = strings(s.versions, `workload.${name}.versions`);
    if (s?.imageDigests !== undefined) imageDigests[role] = strings(s.imageDigests, `workload.${name}.imageDigests`, imageDigest).map((d) => d.toLowerCase());
  };
  app('openWebui', 'open-webui', 'openWebuiVersions');
  app('ollama', 'ollama', 'ollamaVersions');
  const proxy = section(v, 'proxy', ['versions', 'configDigests']);
  if (proxy?.versions !== undefined) p.proxyVersions = strings(proxy.versions, 'workload.proxy.versions');
  if (proxy?.configDigests !== undefined)
    p.proxyConfigDigests = strings(proxy.configDigests, 'workload.proxy.configDigests', hex(48)).map((d) => d.toLowerCase());
  if (v.images !== undefined) {
    if (!isRecord(v.images)) invalid('workload.images', 'must map image roles (as the server config names them) to lists of "sha256:..." digests.');
    for (const [role, list] of Object.entries(v.images)) imageDigests[role] = strings(list, `workload.images.${role}`, imageDigest).map((d) => d.toLowerCase());
  }
  if (Object.keys(imageDigests).length > 0) p.imageDigests = imageDigests;
  const boot = section(v, 'boot', ['kernelCmdline', 'kernelCmdlineDigest']);
  if (boot?.kernelCmdline !== undefined) p.kernelCmdlines = strings(boot.kernelCmdline, 'workload.boot.kernelCmdline');
  if (boot?.kernelCmdlineDigest !== undefined)
    p.kernelCmdlineDigests = strings(boot.kernelCmdlineDigest, 'workload.boot.kernelCmdlineDigest', hex(48)).map((d) => d.toLowerCase());
  if (v.dstack !== undefined) {
    if (!isRecord(v.dstack)) invalid('workload.dstack', 'must map dstack event names ("compose-hash", "app-id", ...) to lists of accepted values.');
    const d: Record<string, string[]> = {};
    for (const [name, list] of Object.entries(v.dstack)) d[name] = strings(list, `workload.dstack.${name}`);
    p.dstackEvents = d;
  }
  return p;
}

/** The `workload` section for a policy file (inverse of {@link parseWorkloadPolicy}). */
export function workloadPolicyToDoc(p: WorkloadPolicy): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  const pin = (m: ModelPin) => (m.digest ? { name: m.name, digest: m.digest } : { name: m.name });
  if (p.requireEventLog !== undefined) doc.requireEventLog = p.requireEventLog;
  if (p.allowedModels || p.requiredModels) {
    doc.models = {
      ...(p.allowedModels ? { allowed: p.allowedModels.map(pin) } : {}),
      ...(p.requiredModels ? { required: p.requiredModels.map(pin) } : {}),
    };
  }
  const { 'open-webui': owi, ollama: oll, ...otherImages } = p.imageDigests ?? {};
  if (p.openWebuiVersions || owi) doc.openWebui = { ...(p.openWebuiVersions ? { versions: p.openWebuiVersions } : {}), ...(owi ? { imageDigests: owi } : {}) };
  if (p.ollamaVersions || oll) doc.ollama = { ...(p.ollamaVersions ? { versions: p.ollamaVersions } : {}), ...(oll ? { imageDigests: oll } : {}) };
  if (p.proxyVersions || p.proxyConfigDigests) {
    doc.proxy = { ...(p.proxyVersions ? { versions: p.proxyVersions } : {}), ...(p.proxyConfigDigests ? { configDigests: p.proxyConfigDigests } : {}) };
  }
  if (Object.keys(otherImages).length > 0) doc.images = otherImages;
  if (p.kernelCmdlines || p.kernelCmdlineDigests) {
    doc.boot = {
      ...(p.kernelCmdlines ? { kernelCmdline: p.kernelCmdlines } : {}),
      ...(p.kernelCmdlineDigests ? { kernelCmdlineDigest: p.kernelCmdlineDigests } : {}),
    };
  }
  if (p.dstackEvents) doc.dstack = p.dstackEvents;
  return doc;
}
