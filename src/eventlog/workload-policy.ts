/**
 * Applies a workload policy (allowed and required models, versions, configuration digest, image
 * digests, kernel command line, dstack events) to a replayed workload report. Each violation is a
 * coded error naming the event it is about. Browser-safe.
 */
import type { VerifyError } from '../core/errors.ts';
import type { ModelPin, WorkloadPolicy } from '../core/types.ts';
import { loadOptionsDigests, type DescribedEvent } from './boot-events.ts';
import type { ReportedModel, WorkloadReport } from './workload-report.ts';

/** "sha256:ABC…" and "abc…" name the same model digest. */
export function normaliseModelDigest(d: string): string {
  return d
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
}

function pinMatches(pin: ModelPin, m: { name: string; digest: string }): boolean {
  return pin.name === m.name && (pin.digest === undefined || normaliseModelDigest(pin.digest) === m.digest);
}

function pinText(p: ModelPin): string {
  return p.digest ? `${p.name} (digest ${normaliseModelDigest(p.digest).slice(0, 12)}…)` : p.name;
}

function modelText(m: ReportedModel): string {
  return `"${m.name}" (digest ${m.digest.slice(0, 12)}…)`;
}

const mismatch = (message: string): VerifyError => ({ code: 'WORKLOAD_MISMATCH', message });
const missingLog = (what: string, why: string | undefined): VerifyError => ({
  code: 'EVENTLOG_MISSING',
  message: `The policy pins ${what}, but the server offers no runtime event log that says it; it is not a ratls-proxy that measures its workload, or measurement is off.${why ? ` ${why}` : ''}`,
});

/** A kernel command line as logged, with and without GRUB's leading kernel path. */
function cmdlineForms(text: string): string[] {
  const t = text.trim();
  const m = /^[/(]\S*\s+(.*)$/s.exec(t);
  return m ? [t, m[1]!.trim()] : [t];
}

async function checkKernelCmdline(report: WorkloadReport, p: WorkloadPolicy, errors: VerifyError[]): Promise<void> {
  if (!p.kernelCmdlines && !p.kernelCmdlineDigests) return;
  const events: DescribedEvent[] = report.boot?.events.filter((e) => e.kind === 'kernel-cmdline') ?? [];
  if (!report.boot) {
    errors.push({ code: 'EVENTLOG_MISSING', message: 'The policy pins the kernel command line, but the server offers no boot event log (CCEL).' });
    return;
  }
  const checkable = events.filter((e) => e.text !== undefined || e.label === 'LOADED_IMAGE::LoadOptions');
  if (checkable.length === 0) {
    errors.push(
      mismatch(
        'The policy pins the kernel command line, but the boot event log has no event that records it (GRUB kernel_cmdline or the EFI stub LoadOptions).',
      ),
    );
    return;
  }
  const wanted = (p.kernelCmdlines ?? []).map((c) => c.trim());
  const digests = new Set((p.kernelCmdlineDigests ?? []).map((d) => d.trim().toLowerCase()));
  for (const t of wanted) for (const d of await loadOptionsDigests(t)) digests.add(d);
  for (const e of checkable) {
    const byText = e.text !== undefined && cmdlineForms(e.text).some((f) => wanted.includes(f));
    if (byText || digests.has(e.digest)) continue;
    const shown = e.text !== undefined ? `"${e.text.slice(0, 200)}"` : `digest ${e.digest.slice(0, 16)}…`;
    errors.push(mismatch(`${e.register} event #${e.index} (kernel command line, ${e.type}): ${shown} is not a command line the policy accepts.`));
  }
}

/** Every violation of `p` by `report`; empty when the policy accepts the workload. */
export async function applyWorkloadPolicy(report: WorkloadReport, p: WorkloadPolicy): Promise<VerifyError[]> {
  const errors: VerifyError[] = [];
  const rt = report.runtime;
  const needsRuntime =
    p.requireEventLog ||
    p.allowedModels ||
    p.requiredModels ||
    p.openWebuiVersions ||
    p.ollamaVersions ||
    p.proxyVersions ||
    p.proxyConfigDigests ||
    p.imageDigests;
  if (needsRuntime && !rt) {
    errors.push(missingLog('the workload (models, versions or configuration)', report.unavailable));
  }
  if (rt) {
    if (p.allowedModels) {
      for (const m of rt.models) {
        if (p.allowedModels.some((pin) => pinMatches(pin, m))) continue;
        errors.push({
          code: 'WORKLOAD_MODEL_NOT_ALLOWED',
          message: `RTMR3 runtime event #${m.seq} (model-added${m.pending ? ', not yet covered by evidence' : ''}): the server holds model ${modelText(m)}, which is not among the ${p.allowedModels.length} model(s) the policy allows (${p.allowedModels.map(pinText).join(', ')}).`,
        });
      }
    }
    for (const pin of p.requiredModels ?? []) {
      const held = rt.models.find((m) => pinMatches(pin, m));
      if (held && !held.pending) continue;
      errors.push({
        code: 'WORKLOAD_MODEL_MISSING',
        message: held
          ? `The policy requires model ${pinText(pin)}; RTMR3 runtime event #${held.seq} records it, but after the evidence was made: ask for fresh evidence (--nonce) or retry after the server's next certificate.`
          : `The policy requires model ${pinText(pin)}, but the runtime log does not show the server holding it${rt.removed.some((r) => r.name === pin.name) ? ' (it was removed)' : ''}.`,
      });
    }
    const version = (label: string, kind: string, got: { version: string; seq: number } | undefined, allowed: string[] | undefined) => {
      if (!allowed) return;
      if (!got)
        errors.push(
          mismatch(
            `The policy pins the ${label} version, but the runtime log records no ${kind} event (the server could not read it, or does not front ${label}).`,
          ),
        );
      else if (!allowed.includes(got.version))
        errors.push(
          mismatch(`RTMR3 runtime event #${got.seq} (${kind}): ${label} version "${got.version}" is not one the policy accepts (${allowed.join(', ')}).`),
        );
    };
    version('open-webui', 'open-webui', rt.openWebui, p.openWebuiVersions);
    version('Ollama', 'ollama', rt.ollama, p.ollamaVersions);
    version('ratls-proxy', 'proxy', rt.proxy, p.proxyVersions);
    if (p.proxyConfigDigests) {
      const want = p.proxyConfigDigests.map((d) => d.trim().toLowerCase());
      if (!rt.proxy) errors.push(mismatch('The policy pins the proxy configuration digest, but the runtime log records no proxy event.'));
      else if (!want.includes(rt.proxy.configDigest))
        errors.push(
          mismatch(`RTMR3 runtime event #${rt.proxy.seq} (proxy): configuration digest ${rt.proxy.configDigest.slice(0, 16)}… is not one the policy accepts.`),
        );
    }
    for (const [role, digests] of Object.entries(p.imageDigests ?? {})) {
      const want = digests.map((d) => d.trim().toLowerCase());
      const images = rt.images.filter((i) => i.role === role);
      if (images.length === 0)
        errors.push(
          mismatch(`The policy pins the ${role} image digest, but the runtime log records no ${role} image (the admin pinned none in the server's config).`),
        );
      for (const i of images) {
        if (!want.includes(i.digest))
          errors.push(mismatch(`RTMR3 runtime event #${i.seq} (image): ${role} image ${i.image}@${i.digest} is not one the policy accepts.`));
      }
    }
  }
  await checkKernelCmdline(report, p, errors);
  for (const [name, values] of Object.entries(p.dstackEvents ?? {})) {
    const want = values.map((v) => v.trim());
    const events = report.dstack?.events.filter((e) => e.name === name) ?? [];
    if (events.length === 0) {
      errors.push(
        mismatch(`The policy pins dstack's "${name}" event, but ${report.dstack ? "dstack's event log has none" : 'the server offers no dstack event log'}.`),
      );
    }
    for (const e of events) {
      if (!want.includes(e.value) && !want.map((w) => w.toLowerCase()).includes(e.value.toLowerCase()))
        errors.push(mismatch(`${e.register} event #${e.index} (dstack ${name}): "${e.value.slice(0, 100)}" is not one the policy accepts.`));
    }
  }
  return errors;
}

/**
 * A workload policy pinned to what `report` shows (for `ratls policy from`): the models held now
 * (allowed and required, with digests), the versions, the proxy's configuration digest, the pinned
 * images, the kernel command line, and dstack's compose-hash / app-id / os-image-hash.
 */
export function pinWorkload(report: WorkloadReport): WorkloadPolicy {
  const p: WorkloadPolicy = {};
  const rt = report.runtime;
  if (rt) {
    p.requireEventLog = true;
    const pins = rt.models.map((m) => ({ name: m.name, digest: m.digest }));
    if (pins.length > 0) {
      p.allowedModels = pins;
      p.requiredModels = pins.map((x) => ({ ...x }));
    }
    if (rt.openWebui) p.openWebuiVersions = [rt.openWebui.version];
    if (rt.ollama) p.ollamaVersions = [rt.ollama.version];
    if (rt.proxy) {
      p.proxyVersions = [rt.proxy.version];
      p.proxyConfigDigests = [rt.proxy.configDigest];
    }
    if (rt.images.length > 0) {
      const byRole: Record<string, string[]> = {};
      for (const i of rt.images) (byRole[i.role] ??= []).push(i.digest);
      p.imageDigests = byRole;
    }
  }
  const cmd = report.boot?.events.find((e) => e.kind === 'kernel-cmdline' && (e.text !== undefined || e.label === 'LOADED_IMAGE::LoadOptions'));
  if (cmd) {
    if (cmd.text !== undefined) p.kernelCmdlines = [cmd.text];
    else p.kernelCmdlineDigests = [cmd.digest];
  }
  if (report.dstack) {
    const pinned: Record<string, string[]> = {};
    for (const name of ['app-id', 'compose-hash', 'os-image-hash']) {
      const values = report.dstack.events.filter((e) => e.name === name).map((e) => e.value);
      if (values.length > 0) pinned[name] = [...new Set(values)];
    }
    if (Object.keys(pinned).length > 0) p.dstackEvents = pinned;
  }
  return p;
}
