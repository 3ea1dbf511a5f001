/**
 * `ratls token verify TOKEN --jwks URL`: checks an attestation token of `ratls attest-service` the
 * way verifyAttestationToken does (signature against the JWKS, issuer, lifetime, nonce, verdict)
 * and prints what it states. Exit 0 valid with a passing verdict, 1 refused, 2 usage or connection.
 */
import { Option, type Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import { expectedNonceFlag, FLAGS } from '../flags.ts';
import { verifyAttestationToken } from '../../token/verify.ts';
import { quoteFieldsFromClaims } from '../../token/measurements.ts';
import { RatlsError } from '../../core/errors.ts';
import { clean, formatQuoteFields } from '../../verify/report.ts';

interface TokenVerifyFlags {
  jwks: string;
  expectNonce?: string;
  nonce?: string;
  issuer?: string;
  audience?: string;
  servicePolicy?: string;
  allowSimulated?: boolean;
  json?: boolean;
}

const JWKS_PATH = '/.well-known/jwks.json';
/** A token is a few KiB; anything far larger on stdin is not one. */
const MAX_STDIN = 256 * 1024;

function processStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c: string) => {
      text += c;
      if (text.length > MAX_STDIN) {
        process.stdin.destroy();
        reject(new UsageError(`Standard input is larger than ${MAX_STDIN} bytes; it is not an attestation token.`));
      }
    });
    process.stdin.once('end', () => resolve(text));
    process.stdin.once('error', reject);
  });
}

/** The issuer a token must carry: --issuer, else the service URL the JWKS URL names. */
function expectedIssuer(flags: TokenVerifyFlags): string | undefined {
  if (flags.issuer) return flags.issuer;
  return flags.jwks.endsWith(JWKS_PATH) ? flags.jwks.slice(0, -JWKS_PATH.length) : undefined;
}

/** Registers `ratls token verify`. */
export function registerTokenCommands(program: Command, io: CliIo): void {
  const token = program.command('token').description('Attestation tokens of ratls attest-service');
  token
    .command('verify')
    .description(
      "Verify an attestation token: ES256/ES384 signature against the service's JWKS, issuer, lifetime, nonce and verdict (exit 0 valid and passing, 1 refused, 2 usage or connection error)",
    )
    .argument('[token]', 'the token (compact JWT); read from standard input when absent or "-"')
    .requiredOption('--jwks <url>', "the service's key set, https://host/.well-known/jwks.json (plain http only to this machine)")
    .addOption(FLAGS.expectNonce())
    .addOption(new Option('--nonce <hex>').hideHelp())
    .addOption(FLAGS.issuer())
    .addOption(FLAGS.audience())
    .addOption(FLAGS.servicePolicy())
    .option('--allow-simulated', 'accept tokens of a service policy that trusts a simulated (non-Intel) root: development only')
    .addOption(FLAGS.json())
    .action(async (arg: string | undefined, flags: TokenVerifyFlags) => {
      const text = (arg === undefined || arg === '-' ? await (io.readStdin ?? processStdin)() : arg).trim();
      if (!text) throw new UsageError('No token: pass it as an argument or on standard input.');
      const nonceHex = flags.expectNonce ?? flags.nonce;
      let expectedNonce: Uint8Array | undefined;
      if (nonceHex !== undefined) {
        expectedNonce = expectedNonceFlag(nonceHex);
      }
      const issuer = expectedIssuer(flags);
      let verified;
      try {
        verified = await verifyAttestationToken(
          text,
          { jwksUrl: flags.jwks },
          {
            ...(issuer ? { issuer } : {}),
            ...(flags.audience ? { audience: flags.audience } : {}),
            ...(flags.servicePolicy !== undefined ? { policy: flags.servicePolicy } : {}),
            ...(expectedNonce ? { expectedNonce } : {}),
            allowSimulated: flags.allowSimulated === true,
            // read a failed verdict, then refuse it with the service's reasons
            allowFailedVerdict: true,
          },
        );
      } catch (err) {
        if (!(err instanceof RatlsError)) throw err;
        const usage = err.code === 'CONNECTION_FAILED' || err.code === 'TOKEN_KEYS_INSECURE';
        const e =
          err.code === 'SIMULATED_EVIDENCE'
            ? {
                code: err.code,
                message: 'The token is from a service policy that trusts a simulated (non-Intel) root; pass --allow-simulated in development only.',
              }
            : err.toJSON();
        if (flags.json) io.out(JSON.stringify({ ok: false, errors: [e] }, null, 2) + '\n');
        else io.err(`ratls token verify: ${e.code}: ${e.message}\n`);
        io.setExitCode(usage ? 2 : 1);
        return;
      }
      const { claims } = verified;
      const ok = claims['x-ratls-ok'] === true;
      const errors = ok ? [] : Array.isArray(claims['x-ratls-errors']) ? claims['x-ratls-errors'] : [];
      if (flags.json) {
        io.out(
          JSON.stringify(
            { ok, kid: verified.kid, alg: verified.alg, issuerChecked: issuer ?? null, nonceChecked: expectedNonce !== undefined, claims },
            null,
            2,
          ) + '\n',
        );
      } else {
        const lines: string[] = [];
        const row = (k: string, v: string) => lines.push(`  ${(k + ':').padEnd(16)}${v}`);
        lines.push(`Attestation token of ${clean(String(claims.iss))}`);
        row(
          'Verdict',
          ok ? `VALID, and the service's verdict is ${clean(String(claims['ear.status']))}` : 'VALID token, but the service REJECTED the evidence',
        );
        row('Signature', clean(`${verified.alg}, key ${verified.kid} from ${flags.jwks}`));
        row('Issuer', issuer ? clean(`${String(claims.iss)} (required)`) : 'not checked: pass --issuer');
        row('Lifetime', `issued ${new Date((claims.iat ?? 0) * 1000).toISOString()}, expires ${new Date((claims.exp ?? 0) * 1000).toISOString()}`);
        row(
          'Nonce',
          expectedNonce ? 'eat_nonce is the nonce you gave' : claims.eat_nonce ? 'present, not checked: pass --expect-nonce' : 'none (the token is not fresh)',
        );
        row(
          'Policy',
          clean(
            `${String(claims['x-ratls-policy'])}${flags.servicePolicy !== undefined ? ' (required)' : ' (not checked: pass --service-policy)'}, evidence: ${String(claims['x-ratls-evidence'])}`,
          ),
        );
        row('TCB status', clean(String(claims.attester_tcb_status ?? 'none')));
        if (claims['x-ratls-simulated'] === true) row('Root', 'SIMULATED / non-Intel root: not evidence of real TDX hardware');
        const q = quoteFieldsFromClaims(claims);
        if (q) lines.push('  Measurements:', formatQuoteFields(q, '    ').trimEnd());
        if (errors.length > 0) {
          lines.push('  Reasons:');
          for (const e of errors) lines.push(`    ${clean(String(e.code))}: ${clean(String(e.message))}`);
        }
        io.out(lines.join('\n') + '\n');
      }
      io.setExitCode(ok ? 0 : 1);
    });
}
