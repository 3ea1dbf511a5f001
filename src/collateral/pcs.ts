/**
 * Intel PCS v4 / PCCS client. Fetches the TDX TCB info, the TD QE identity, the PCK CRL and the
 * root CA CRL with their issuer chains (from response headers, percent-encoded PEM).
 * Nothing fetched is trusted: the verifier checks every signature against its trusted roots.
 */
import { RatlsError } from '../core/errors.ts';
import type { Collateral } from '../core/types.ts';
import { crlToDer } from '../verify/x509.ts';
import type { CollateralRequest, CollateralSource } from './types.ts';

/** Intel's Provisioning Certification Service. */
export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com';
/** CRL distribution point of the Intel SGX Root CA (from the root certificate). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

/** Options for {@link PcsCollateralSource}. */
export interface PcsSourceOptions {
  /** Base URL, e.g. https://api.trustedservices.intel.com or a PCCS such as https://pccs.example:8081. */
  baseUrl: string;
  /**
   * 'pcs' fetches the root CA CRL from the root's CRL distribution point; 'pccs' from
   * {base}/sgx/certification/v4/rootcacrl (hex or DER). Default: 'pcs' for Intel's URL, else 'pccs'.
   */
  kind?: 'pcs' | 'pccs';
  /** Override where the root CA CRL comes from (tests, mirrors). */
  rootCaCrlUrl?: string;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** fetch implementation; default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Largest response body accepted; default 4 MiB. */
  maxBytes?: number;
}

interface Fetched {
  body: Uint8Array;
  headers: Headers;
}

/** Decodes a percent-encoded PEM chain header. */
function chainHeader(headers: Headers, names: string[], what: string): string {
  for (const n of names) {
    const v = headers.get(n);
    if (v) {
      try {
        return decodeURIComponent(v);
      } catch {
        throw new RatlsError('COLLATERAL_MALFORMED', `The ${what} issuer chain header ${n} is not valid percent-encoding.`);
      }
    }
  }
  throw new RatlsError('COLLATERAL_MALFORMED', `The collateral service sent the ${what} without its issuer chain header (${names[0]}).`);
}

/** Collateral from Intel PCS v4 or a PCCS. */
export class PcsCollateralSource implements CollateralSource {
  readonly name: string;
  private readonly base: string;
  private readonly kind: 'pcs' | 'pccs';
  private readonly opts: PcsSourceOptions;

  constructor(opts: PcsSourceOptions) {
    this.opts = opts;
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.kind = opts.kind ?? (this.base === INTEL_PCS_URL ? 'pcs' : 'pccs');
    this.name = `${this.kind}:${this.base}`;
  }

  private async fetchBytes(url: string, what: string): Promise<Fetched | undefined> {
    const f = this.opts.fetch ?? globalThis.fetch;
    const max = this.opts.maxBytes ?? 4 * 1024 * 1024;
    let res: Response;
    try {
      res = await f(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000), redirect: 'follow' });
    } catch (err) {
      throw new RatlsError(
        'COLLATERAL_MISSING',
        `Cannot fetch the ${what} from ${url}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}.`,
        { cause: err },
      );
    }
    // 404: this service does not know the FMSPC; the caller moves on to the next source.
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new RatlsError('COLLATERAL_MISSING', `The collateral service answered ${res.status} for the ${what} (${url}).`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > max) {
      await res.body?.cancel();
      throw new RatlsError('COLLATERAL_MALFORMED', `The ${what} from ${url} is too large (${declared} bytes).`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > max) {
          await reader.cancel();
          throw new RatlsError('COLLATERAL_MALFORMED', `The ${what} from ${url} is too large.`);
        }
        chunks.push(value);
      }
    }
    return { body: new Uint8Array(Buffer.concat(chunks)), headers: res.headers };
  }

  async get(request: CollateralRequest): Promise<Collateral | undefined> {
    const fmspc = request.fmspc.toLowerCase();
    if (!/^[0-9a-f]{12}$/.test(fmspc)) throw new RatlsError('COLLATERAL_MISSING', `Invalid FMSPC "${request.fmspc}".`);
    const ca = request.pckCa === 'processor' ? 'processor' : 'platform';
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const rootUrl = this.opts.rootCaCrlUrl ?? (this.kind === 'pcs' ? INTEL_ROOT_CA_CRL_URL : `${this.base}/sgx/certification/v4/rootcacrl`);

    const [tcb, qe, crl, root] = await Promise.all([
      this.fetchBytes(`${this.base}/tdx/certification/v4/tcb?fmspc=${fmspc}`, 'TDX TCB info'),
      this.fetchBytes(`${this.base}/tdx/certification/v4/qe/identity`, 'TD QE identity'),
      this.fetchBytes(`${this.base}/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`, 'PCK CRL'),
      this.fetchBytes(rootUrl, 'root CA CRL'),
    ]);
    if (!tcb) return undefined;
    if (!qe || !crl || !root) {
      throw new RatlsError(
        'COLLATERAL_MISSING',
        `The collateral service ${this.base} has TCB info for FMSPC ${fmspc} but not the QE identity, PCK CRL or root CA CRL.`,
      );
    }
    return {
      // kept exactly as served: the signature covers these bytes
      tcbInfoJson: text(tcb.body),
      tcbInfoIssuerChain: chainHeader(tcb.headers, ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'], 'TCB info'),
      qeIdentityJson: text(qe.body),
      qeIdentityIssuerChain: chainHeader(qe.headers, ['SGX-Enclave-Identity-Issuer-Chain'], 'QE identity'),
      pckCrl: crlToDer(crl.body, 'PCK CRL from the collateral service'),
      pckCrlIssuerChain: chainHeader(crl.headers, ['SGX-PCK-CRL-Issuer-Chain'], 'PCK CRL'),
      rootCaCrl: crlToDer(root.body, 'root CA CRL from the collateral service'),
    };
  }
}
