/**
 * Default identity source: RA-TLS issuance (src/ratls/identity.ts) with the evidence provider the
 * config asks for. Without TDX it refuses to start unless simulation was requested.
 *
 * Collateral: a provider with collateral of its own (simulated) staples that; one without
 * (configfs-tsm on real TDX) gets it from the sources in `config.collateral` (directories, disk
 * cache, PCCS, Intel PCS), fetched again at every issuance so rotations pick up new TCB info.
 */
import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { ServeConfig } from './config.ts';
import type { IdentityMeasurements, IdentitySource } from './identity-source.ts';
import type { EvidenceProvider } from '../ratls/evidence-provider.ts';
import type { Collateral } from '../core/types.ts';
import { selectEvidenceProvider } from '../tee/select.ts';
import { withCollateralSources, type WithCollateralOptions } from '../tee/with-collateral.ts';
import { collateralSourcesFromSettings } from '../collateral/from-settings.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../ratls/identity.ts';
import { createNonceEvidence } from '../ratls/evidence.ts';
import { parseQuote } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';
import { RatlsError } from '../core/errors.ts';
import { verifyRatlsCertificate } from '../ratls/verify-cert.ts';

/** The RA-TLS identity source plus what the CLI and tests want to inspect. */
export interface RatlsIdentitySource extends IdentitySource<RatlsIdentity> {
  provider: EvidenceProvider;
  /** Outcome of the latest collateral fetch for issuance (undefined before the first, or when stapling is off). */
  collateralStatus(): { stapled: boolean; error?: string } | undefined;
}

/** Where a provider without collateral of its own gets some, from `config.collateral`. */
export function collateralProviderFor(config: ServeConfig, p: EvidenceProvider, opts: WithCollateralOptions = {}): EvidenceProvider {
  if (p.collateral) return p;
  const c = config.collateral;
  return withCollateralSources(
    p,
    collateralSourcesFromSettings({
      ...(c.pccsUrl ? { pccsUrl: c.pccsUrl } : {}),
      pcsUrl: c.pcsUrl,
      ...(c.cacheDir ? { cacheDir: c.cacheDir } : {}),
      directories: c.directories,
      offline: c.offline,
    }),
    opts,
  );
}

/**
 * Lifetime of a certificate issued without the collateral it should staple. The server rotates at
 * rotateAt of the lifetime, so this makes the next stapling attempt come minutes, not hours, later.
 */
export const UNSTAPLED_VALIDITY_SECONDS = 15 * 60;

/** Options of {@link createRatlsIdentitySource}. */
export interface RatlsIdentitySourceOptions {
  /**
   * Roots for the issuance self-check (default: the simulated world's root for the simulated
   * provider, else the pinned Intel SGX Root CA, as a default client would use).
   */
  selfCheckRoots?: string[];
}

/** Builds the production identity source for `config` (or for an already chosen provider). */
export async function createRatlsIdentitySource(
  config: ServeConfig,
  provider?: EvidenceProvider,
  options: RatlsIdentitySourceOptions = {},
): Promise<RatlsIdentitySource> {
  const p =
    provider ??
    (await selectEvidenceProvider({
      simulate: config.evidence.provider === 'simulated',
      simDir: config.evidence.simDir,
      configfsRoot: config.evidence.configfsRoot,
      simulated: { quoteLatencyMs: config.evidence.simQuoteLatencyMs },
    }));
  let logger: Logger | undefined;
  const validitySeconds = Math.round(config.tls.validityMs / 1000);
  const withCollateral = collateralProviderFor(config, p, {
    onFetched: (info) => logger?.info(info, 'collateral fetched for stapling'),
  });

  // Metrics exist before the server attaches its registry, so nothing is lost if issue() runs first.
  const stapledGauge = new Gauge({
    name: 'ratls_collateral_stapled',
    help: '1 when the latest issued certificate carries stapled DCAP collateral, 0 when it is served without (offline and browser verifiers will fail)',
    registers: [],
  });
  const selfCheckGauge = new Gauge({
    name: 'ratls_self_check_ok',
    help: '1 when the latest certificate verifies with its stapled collateral under the default client policy (Intel root, UpToDate, no DEBUG), else 0',
    registers: [],
  });
  const fetchFailures = new Counter({ name: 'ratls_collateral_fetch_failures_total', help: 'Failed collateral fetches for stapling', registers: [] });
  let status: { stapled: boolean; error?: string } | undefined;
  // What the control route hands out: the collateral last fetched for issuance, so clients cannot
  // make the proxy hammer PCS; without any yet, at most one fetch attempt a minute.
  let lastCollateral: Collateral | undefined;
  let lastAttempt = -Infinity;

  /** Collateral to staple now, or undefined (with a warning) when it cannot be had and is not required. */
  const collateralForIssue = async (now: Date): Promise<Collateral | undefined> => {
    if (!config.tls.stapleCollateral) return undefined;
    try {
      const c = await withCollateral.collateral!(now);
      lastCollateral = c;
      stapledGauge.set(1);
      status = { stapled: true };
      return c;
    } catch (err) {
      // The platform is identified from a quote; when quoting itself fails, that is the error to
      // report, not a missing collateral (issuance would fail on it next anyway).
      if (err instanceof RatlsError && err.code.startsWith('EVIDENCE_PROVIDER')) throw err;
      fetchFailures.inc();
      const why = err instanceof Error ? err.message : String(err);
      status = { stapled: false, error: why };
      if (config.collateral.required) {
        // Nothing new is served: the gauge keeps describing the certificate still in use.
        throw new RatlsError(
          'COLLATERAL_MISSING',
          `Cannot staple collateral and collateral.required is true, so no certificate is issued: ${why} ` +
            'Check collateral.pccsUrl / pcsUrl and network access, or set collateral.required: false to serve without it.',
        );
      }
      stapledGauge.set(0);
      logger?.warn(
        { err: why, retryInSeconds: Math.round(Math.min(validitySeconds, UNSTAPLED_VALIDITY_SECONDS) * config.tls.rotateAt) },
        'collateral could not be fetched; serving a short-lived certificate WITHOUT stapled collateral (offline and browser verifiers fail until a rotation staples it)',
      );
      return undefined;
    }
  };

  /**
   * Verifies a fresh certificate the way a browser or offline client with the default policy would,
   * so the admin learns at issuance (log + metric) rather than from client failures. Advisory only.
   */
  const selfCheck = async (identity: RatlsIdentity, now: Date): Promise<void> => {
    // A simulated certificate chains to the simulated world's root, never to Intel's.
    const simRoot = p.simulated && 'rootPem' in p && typeof p.rootPem === 'string' ? [p.rootPem] : undefined;
    const roots = options.selfCheckRoots ?? simRoot;
    const r = await verifyRatlsCertificate(identity.certDer, { now, ...(roots ? { trustedRoots: roots } : {}) });
    selfCheckGauge.set(r.ok ? 1 : 0);
    if (!r.ok) {
      logger?.warn(
        { tcbStatus: r.tcbStatus, advisoryIds: r.advisoryIds, errors: r.errors.map((e) => `${e.code}: ${e.message}`) },
        'the new certificate does NOT verify under the default client policy; clients need a policy that accepts this platform (see ratls policy)',
      );
    }
  };

  return {
    provider: p,
    collateralStatus: () => status,
    attach({ registry, logger: log }) {
      registry.registerMetric(stapledGauge);
      registry.registerMetric(fetchFailures);
      registry.registerMetric(selfCheckGauge);
      logger = log;
      if (status && !status.stapled && !config.collateral.required) {
        log.warn({ err: status.error }, 'collateral could not be fetched; the certificate is served WITHOUT stapled collateral');
      }
    },
    async issue(now) {
      const collateral = await collateralForIssue(now);
      const missing = collateral === undefined && config.tls.stapleCollateral;
      const identity = await createRatlsIdentity({
        provider: p,
        hosts: config.tls.hosts,
        keyAlg: config.tls.keyAlg,
        validitySeconds: missing ? Math.min(validitySeconds, UNSTAPLED_VALIDITY_SECONDS) : validitySeconds,
        now,
        profile: config.tls.profile,
        stapleCollateral: collateral !== undefined,
        ...(collateral ? { collateral } : {}),
      });
      if (collateral) await selfCheck(identity, now);
      return identity;
    },
    evidence: (identity, nonce) => createNonceEvidence(identity, p, nonce),
    quote: (reportData) => p.getQuote(reportData),
    async collateral(now: Date): Promise<Collateral | undefined> {
      if (p.collateral) return p.collateral(now);
      if (lastCollateral) return lastCollateral;
      if (performance.now() - lastAttempt < 60_000) return undefined;
      lastAttempt = performance.now();
      lastCollateral = await withCollateral.collateral!(now);
      return lastCollateral;
    },
    measurements: (identity): IdentityMeasurements | undefined => {
      try {
        const s = summarizeQuote(parseQuote(identity.quote));
        return { mrTd: s.mrTd, rtmr0: s.rtmr0, rtmr1: s.rtmr1, rtmr2: s.rtmr2, rtmr3: s.rtmr3 };
      } catch {
        return undefined;
      }
    },
  };
}
