/**
 * Options shared by several commands, defined once so a flag reads the same everywhere
 * (`ratls verify --root` and `ratls cert verify --root` are the same thing, said the same way).
 */
import { Option } from 'commander';
import { fromHex } from '../core/bytes.ts';
import { UsageError } from './io.ts';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** The flags, by name; each call returns a fresh Option (commander attaches options to one command). */
export const FLAGS = {
  root: () =>
    new Option(
      '--root <pem>',
      "trust this root certificate file (PEM or DER) instead of Intel's SGX Root CA; repeatable (simulated TDX: .ratls/sim/root.pem)",
    ).argParser(collect),
  policy: () => new Option('--policy <file>', 'policy file, YAML or JSON (docs/policy.md); default: Intel root, UpToDate, no DEBUG, no measurement pinned'),
  json: () => new Option('--json', 'print the result as one JSON object'),
  at: () => new Option('--at <iso8601>', 'verification time, e.g. 2025-07-19T10:00:00Z (default: now)'),
  nonce: () =>
    new Option(
      '--nonce',
      'with --binding certificate: also require fresh evidence over a random nonce on each connection (/.well-known/ratls/evidence; session evidence carries a nonce already)',
    ),
  binding: () =>
    new Option(
      '--binding <kind>',
      'what evidence must be bound to: session (default: this TLS session, RFC 9266 exporter) or certificate (the key only: relayable if the TLS key leaks)',
    ).choices(['session', 'certificate']),
  collateral: () =>
    new Option(
      '--collateral <path>',
      "Intel's collateral: a directory in the seven-file layout (tcb_info.json, qe_identity.json, CRLs, issuer chains) or dcap-qvl's collateral JSON file",
    ),
  listen: (defaultValue?: string) => {
    const o = new Option('--listen <host:port>', 'address to listen on, HOST:PORT');
    return defaultValue === undefined ? o : o.default(defaultValue);
  },
  host: () => new Option('--host <name>', "DNS name or IP address for the certificate's subjectAltName; repeatable").argParser(collect),
  keyAlg: () => new Option('--key-alg <alg>', 'key of the RA-TLS certificate: P-256 (default) or P-384'),
  simulate: () => new Option('--simulate', 'use the SIMULATED TDX evidence provider instead of configfs-tsm (development and tests only)'),
  simDir: () => new Option('--sim-dir <dir>', 'directory of the SIMULATED TDX world, created on first use (default .ratls/sim)'),
  profile: () => new Option('--profile <profile>', 'RA-TLS certificate profile: ccc (default, CCC interoperable RA-TLS) or dstack'),
  ollama: (defaultValue?: string) => {
    const o = new Option('--ollama <url>', "Ollama's origin, http://host:port");
    return defaultValue === undefined ? o : o.default(defaultValue);
  },
  config: () => new Option('--config <file>', 'config file, YAML or JSON; flags override its values'),
  cert: () => new Option('--cert <file>', 'RA-TLS certificate file (PEM or DER)'),
  quote: () => new Option('--quote <file>', 'TDX quote file: the raw bytes configfs-tsm or a quote API returns, or them as base64 or hex text'),
  expectNonce: () =>
    new Option(
      '--expect-nonce <hex>',
      'the nonce you sent, in hex as ratls prints nonces (ratls attest --json, ratls verify --json): what is verified must carry exactly this one',
    ),
  issuer: () => new Option('--issuer <url>', 'token issuer (iss): attest-service signs with it, attest and token verify require it (default: the service URL)'),
  audience: () => new Option('--audience <aud>', 'token audience (aud): attest-service signs with it, attest and token verify require it (default: none)'),
  servicePolicy: () =>
    new Option(
      '--service-policy <name>',
      "the service's policy (GET /v1/policies) the token must name (x-ratls-policy): attest asks for it (default: the service's default), token verify requires it (default: not checked)",
    ),
} as const;

/**
 * The value of `--expect-nonce` (or its old spelling `--nonce`) as bytes. Nonces on the command
 * line are hex, as ratls prints them and the evidence route takes them (`?nonce=HEX`); base64 (what
 * the attestation service's JSON and `verifyAttestationToken`'s string form take) is not guessed
 * at, because a hex string is valid base64 too.
 * @throws UsageError saying what is expected and how to convert a base64 nonce
 */
export function expectedNonceFlag(value: string): Uint8Array {
  const bytes = fromHex(value.trim());
  if (!bytes || bytes.length === 0) {
    throw new UsageError(
      '--expect-nonce takes the nonce in hex (an even number of 0-9a-f digits), as ratls prints nonces (ratls attest --json, ratls verify --json) and `openssl rand -hex 32` makes them; a base64 nonce converts with `echo B64 | base64 -d | xxd -p -c 256`.',
    );
  }
  return bytes;
}

/**
 * The input file of a command that takes it as a flag or as its one argument (`ratls cert verify
 * c.pem` reads as `--cert c.pem`): newcomers type the short form first.
 * @throws UsageError when neither is given, or both name different files
 */
export function fileFlagOrArgument(flag: string | undefined, argument: string | undefined, flagName: string): string {
  if (flag !== undefined && argument !== undefined && flag !== argument) {
    throw new UsageError(`${flagName} ${flag} and the argument ${argument} name different files; give one.`);
  }
  const file = flag ?? argument;
  if (file === undefined) throw new UsageError(`required option '${flagName} <file>' not specified (or give the file as the argument)`);
  return file;
}
