/**
 * Every shell command the README shows is run here, the way a reader runs it: from a checkout
 * (a sandbox directory linking this one's bin, src and node_modules, so `.ratls/` and files land in
 * the sandbox), `ratls` on the PATH, `npm start` serving the quick start. The only changes made to a
 * command are listed in SUBSTITUTIONS (ephemeral ports instead of 8443/8080/8444, the sandbox's
 * files instead of system paths, the shared test data for quote.dat and DIR). A command the README
 * shows that this file does not know fails the test, so the README and its tests stay in step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collateralDirFor, loadManifest, TESTDATA_DIR } from '../helpers/testdata.ts';

const REPO = resolve(import.meta.dirname, '../..');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The commands of every ```sh block, comments dropped, whitespace collapsed. */
export function readmeCommands(markdown: string): string[] {
  const out: string[] = [];
  for (const m of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    // a trailing backslash continues the command on the next line
    for (const raw of m[1]!.replace(/\\\n\s*/g, ' ').split('\n')) {
      const line = raw.replace(/\s+#\s.*$/, '').trim();
      if (line && !line.startsWith('#')) out.push(line.replace(/\s+/g, ' '));
    }
  }
  return out;
}

interface Run {
  code: number;
  out: string;
}

/** How each README command is checked. `expect` sees the exit code and stdout+stderr. */
type Plan =
  | { kind: 'quickstart' | 'sandbox'; expect: (r: Run) => void }
  | { kind: 'long-running'; ready: RegExp; then: (url: string) => Promise<void>; extraArgs?: () => string }
  | { kind: 'not run'; why: string; coveredBy: string };

const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });

let sandbox: string;
let env: NodeJS.ProcessEnv;
let serverPort: number;
let connectPort: number;
let servicePort: number;
let server: ChildProcess | undefined;
let serverLog = '';
const quoteEntry = () => loadManifest().quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!;

/** The documented changes to a README command before it runs. */
function SUBSTITUTIONS(cmd: string): string {
  const q = quoteEntry();
  return cmd
    .replaceAll('localhost:8443', `localhost:${serverPort}`)
    .replaceAll('vm.example:8443', `localhost:${serverPort}`)
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${connectPort}`)
    .replaceAll('127.0.0.1:8444', `127.0.0.1:${servicePort}`)
    .replaceAll('localhost:8444', `127.0.0.1:${servicePort}`)
    .replaceAll('/var/lib/ratls/attest/keys', join(sandbox, 'attest-keys'))
    .replaceAll('/etc/ratls/ratls.yaml', 'config/ratls.example.yaml')
    .replaceAll('--collateral DIR', `--collateral ${collateralDirFor(q.collateral!.set)}`);
}

function bash(cmd: string, extraEnv: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync('bash', ['-c', `${cmd} 2>&1`], { cwd: sandbox, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout };
}

const PLANS: Record<string, Plan> = {
  'npm ci': { kind: 'not run', why: 'it would replace node_modules under the running suite', coveredBy: '.ci/run' },
  'npm start': { kind: 'quickstart', expect: () => undefined }, // started in beforeAll; its banner is checked below
  'npm test': { kind: 'not run', why: 'it is this suite', coveredBy: '.ci/run' },
  './bin/ratls verify https://localhost:8443 --root .ratls/sim/root.pem': {
    kind: 'quickstart',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Verdict:\s+PASS: .*no software is pinned: any TD on it passes/);
      expect(r.out).toMatch(/Binding:\s+session: evidence bound to this TLS session/);
    },
  },
  './bin/ratls verify https://localhost:8443': {
    kind: 'quickstart',
    expect: (r) => {
      expect(r.code).toBe(1);
      expect(r.out).toContain('PCK_CHAIN_UNTRUSTED');
    },
  },
  './bin/ratls policy from --url https://localhost:8443 --root .ratls/sim/root.pem --out policy.yaml': {
    kind: 'quickstart',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(readFileSync(join(sandbox, 'policy.yaml'), 'utf8')).toMatch(/mrTd:\n\s+- [0-9a-f]{96}/);
    },
  },
  './bin/ratls verify https://localhost:8443 --policy policy.yaml': {
    kind: 'quickstart',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/and the TD matches the pinned MRTD, RTMR0, RTMR1, RTMR2, RTMR3/);
    },
  },
  'KEY=$(cat .ratls/demo/api-key)': { kind: 'quickstart', expect: (r) => expect(r.code).toBe(0) },
  [`curl -sk https://localhost:8443/api/chat/completions -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"model":"ratls-demo:latest","stream":true,"messages":[{"role":"user","content":"hi"}]}'`]:
    {
      kind: 'quickstart',
      expect: (r) => {
        expect(r.code).toBe(0);
        const events = r.out.trim().split('\n\n');
        expect(events.length).toBeGreaterThan(10);
        expect(events.at(-1)).toBe('data: [DONE]');
        expect(r.out).toContain('"finish_reason":"stop"');
      },
    },
  'curl -sk https://localhost:8443/ollama/api/tags': {
    kind: 'quickstart',
    expect: (r) => expect(r.out).toBe('{"detail":"Not authenticated"}'),
  },
  'ratls serve': { kind: 'sandbox', expect: refusesWithoutTdx },
  'ratls serve --open-webui http://127.0.0.1:3000 --ollama http://127.0.0.1:11434': { kind: 'sandbox', expect: refusesWithoutTdx },
  'ratls serve --config /etc/ratls/ratls.yaml': { kind: 'sandbox', expect: refusesWithoutTdx },
  'docker compose -f deploy/compose.yaml up -d': {
    kind: 'not run',
    why: 'this suite runs without a container engine; npm run test:container runs this compose file',
    coveredBy: 'tests/container/stack.test.ts',
  },
  'ratls verify https://vm.example:8443': {
    kind: 'sandbox',
    // the quick-start server is simulated: Intel's root alone refuses it
    expect: (r) => {
      expect(r.code).toBe(1);
      expect(r.out).toContain('PCK_CHAIN_UNTRUSTED');
    },
  },
  'ratls policy from --url https://vm.example:8443 --out policy.yaml': {
    kind: 'sandbox',
    // not verifiable without the simulated root: exit 1, and the policy.yaml made earlier is left as it was
    expect: (r) => {
      expect(r.code).toBe(1);
      expect(r.out).toContain('policy.yaml was not written');
      expect(readFileSync(join(sandbox, 'policy.yaml'), 'utf8')).toMatch(/mrTd:/);
    },
  },
  'ratls verify https://vm.example:8443 --policy policy.yaml': {
    kind: 'sandbox',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/matches the pinned MRTD/);
    },
  },
  'ratls connect --upstream https://vm.example:8443 --policy policy.yaml --listen 127.0.0.1:8080': {
    kind: 'long-running',
    ready: /status page (http:\/\/\S+)\/\.ratls\/status/,
    then: async (url) => {
      const page = await (await fetch(`${url}/`)).text();
      expect(page).toContain('id="login-form"');
      const status = (await (await fetch(`${url}/.ratls/status?format=json`)).json()) as { state: string };
      expect(status.state).toBe('verified');
    },
  },
  'ratls attest-service --listen 127.0.0.1:8444 --key-dir /var/lib/ratls/attest/keys': {
    kind: 'long-running',
    ready: /listening on (http:\/\/\S+)/,
    // loopback only: the test collateral instead of Intel PCS, appraised at the quote's time
    extraArgs: () => ` --offline --collateral-dir ${join(TESTDATA_DIR, 'collateral')} --verify-at ${quoteEntry().verification_time!.iso}`,
    then: async () => {
      // the README's curl, run while the service is up (see below)
      const r = bash(SUBSTITUTIONS(`curl -s localhost:8444/v1/attest -H 'content-type: application/json' -d "{\\"quote\\":\\"$(base64 -w0 quote.dat)\\"}"`));
      expect(r.code).toBe(0);
      const body = JSON.parse(r.out) as { token: string; result: { ok: boolean; tcbStatus: string } };
      expect(body.result, r.out).toMatchObject({ ok: true, tcbStatus: 'UpToDate' });
      expect(body.token.split('.')).toHaveLength(3);
    },
  },
  [`curl -s localhost:8444/v1/attest -H 'content-type: application/json' -d "{\\"quote\\":\\"$(base64 -w0 quote.dat)\\"}"`]: {
    kind: 'not run',
    why: 'needs the service above running; run in its step',
    coveredBy: 'tests/readme/commands.test.ts',
  },
  // the original demo's flow against the quick-start server: service, attest, token verify
  'ratls attest-service --listen 127.0.0.1:8444 --root .ratls/sim/root.pem': {
    kind: 'long-running',
    ready: /listening on (http:\/\/\S+)/,
    then: async () => {
      const pass = bash(SUBSTITUTIONS('ratls attest https://localhost:8443 --service http://127.0.0.1:8444 --root .ratls/sim/root.pem'));
      expect(pass.code, pass.out).toBe(0);
      expect(pass.out).toMatch(/Verdict:\s+PASS: platform verified under a SIMULATED \/ non-Intel root \(TCB UpToDate\), but no software is pinned/);
      expect(pass.out).toMatch(/Service:\s+affirming under its policy "default"/);
      const json = bash(
        SUBSTITUTIONS(
          'ratls attest https://localhost:8443 --service http://127.0.0.1:8444 --root .ratls/sim/root.pem --policy policy.yaml --json > attest.json',
        ),
      );
      expect(json.code, json.out).toBe(0);
      const a = JSON.parse(readFileSync(join(sandbox, 'attest.json'), 'utf8')) as {
        ok: boolean;
        token: string;
        nonce: string;
        policyCheck: { verdict: string };
      };
      expect(a.ok).toBe(true);
      expect(a.policyCheck.verdict).toMatch(/the TD matches the pinned MRTD, RTMR0, RTMR1, RTMR2, RTMR3/);
      const token = bash(
        SUBSTITUTIONS(
          'jq -r .token attest.json | ratls token verify --jwks http://127.0.0.1:8444/.well-known/jwks.json --expect-nonce "$(jq -r .nonce attest.json)" --allow-simulated',
        ),
      );
      expect(token.code, token.out).toBe(0);
      expect(token.out).toMatch(/Verdict:\s+VALID, and the service's verdict is affirming/);
      expect(token.out).toMatch(/Nonce:\s+eat_nonce is the nonce you gave/);
    },
  },
  'ratls attest https://localhost:8443 --service http://127.0.0.1:8444 --root .ratls/sim/root.pem': {
    kind: 'not run',
    why: 'needs the service above running; run in its step',
    coveredBy: 'tests/readme/commands.test.ts',
  },
  'ratls attest https://localhost:8443 --service http://127.0.0.1:8444 --root .ratls/sim/root.pem --policy policy.yaml --json > attest.json': {
    kind: 'not run',
    why: 'needs the service above running; run in its step',
    coveredBy: 'tests/readme/commands.test.ts',
  },
  ['jq -r .token attest.json | ratls token verify --jwks http://127.0.0.1:8444/.well-known/jwks.json --expect-nonce "$(jq -r .nonce attest.json)" --allow-simulated']:
    { kind: 'not run', why: 'needs the service above running; run in its step', coveredBy: 'tests/readme/commands.test.ts' },
  'ratls quote verify --quote quote.dat --collateral DIR --at 2025-07-19T10:00:34Z': {
    kind: 'sandbox',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Verdict:\s+PASS: genuine Intel TDX platform \(TCB UpToDate\), but no software is pinned/);
    },
  },
  'ratls quote inspect --quote quote.dat': {
    kind: 'sandbox',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^TDX quote \(\d+ bytes/);
    },
  },
  'ratls sim init --dir ~/.ratls/sim': {
    kind: 'sandbox',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(existsSync(join(sandbox, 'home/.ratls/sim/root.pem'))).toBe(true);
    },
  },
  'ratls cert issue --simulate --sim-dir ~/.ratls/sim --out-cert c.pem --out-key k.pem --host localhost': {
    kind: 'sandbox',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(existsSync(join(sandbox, 'c.pem'))).toBe(true);
    },
  },
  'ratls cert verify --cert c.pem --root ~/.ratls/sim/root.pem': {
    kind: 'sandbox',
    expect: (r) => {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^RA-TLS certificate verification of c\.pem\n\s+Verdict:\s+PASS/);
    },
  },
};

function refusesWithoutTdx(r: Run): void {
  expect(r.code).toBe(2);
  expect(r.out).toContain('EVIDENCE_PROVIDER_UNAVAILABLE');
}

const commands = readmeCommands(README);

describe('README commands', () => {
  beforeAll(async () => {
    sandbox = mkdtempSync(join(tmpdir(), 'ratls-readme-'));
    for (const name of ['bin', 'src', 'node_modules', 'certs', 'config', 'deploy', 'package.json']) symlinkSync(join(REPO, name), join(sandbox, name));
    mkdirSync(join(sandbox, 'home'));
    copyFileSync(join(TESTDATA_DIR, quoteEntry().file), join(sandbox, 'quote.dat'));
    [serverPort, connectPort, servicePort] = [await freePort(), await freePort(), await freePort()];
    env = {
      ...process.env,
      HOME: join(sandbox, 'home'),
      PATH: `${join(sandbox, 'bin')}:${process.env.PATH ?? ''}`,
      // this machine has no TDX; make sure of it, so "ratls serve" shows the refusal a reader sees
      RATLS_CONFIGFS_ROOT: join(sandbox, 'no-configfs-tsm'),
      RATLS_CACHE_DIR: join(sandbox, 'cache'),
      npm_config_update_notifier: 'false',
    };
    for (const k of ['PORT', 'RATLS_LISTEN', 'RATLS_SIM_DIR', 'RATLS_DEMO_DIR', 'RATLS_CONFIG']) delete env[k];
    // the quick start: `npm start`, as the README says (on a free port instead of 8443)
    server = spawn('npm', ['start'], { cwd: sandbox, env: { ...env, PORT: String(serverPort) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    server.stdout!.resume();
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`npm start: no banner within 60 s:\n${serverLog}`)), 60_000);
      server!.stderr!.on('data', (c: Buffer) => {
        serverLog += c.toString();
        if (serverLog.includes('Check it from another terminal')) {
          clearTimeout(t);
          res();
        }
      });
      server!.once('exit', (code) => rej(new Error(`npm start exited ${code}:\n${serverLog}`)));
    });
  });
  afterAll(() => {
    // npm runs the server as its child: stop the whole process group
    if (server?.pid) process.kill(-server.pid, 'SIGTERM');
    rmSync(sandbox, { recursive: true, force: true });
  });

  it('knows every command the README shows, and nothing it no longer shows', () => {
    expect(commands.filter((c) => !(c in PLANS))).toEqual([]);
    expect(Object.keys(PLANS).filter((c) => !commands.includes(c))).toEqual([]);
    for (const p of Object.values(PLANS)) if (p.kind === 'not run') expect(existsSync(join(REPO, p.coveredBy))).toBe(true);
  });

  it('npm start prints the banner the README describes', () => {
    expect(serverLog).toContain(`listening on https://127.0.0.1:${serverPort}/`);
    expect(serverLog).toContain('SIMULATED');
    expect(serverLog).toMatch(/demo login\s+admin@example\.com \/ \S+/);
    expect(serverLog).toMatch(/demo API key\s+sk-[0-9a-f]{32}\s+\(also in \.ratls\/demo\/api-key\)/);
    expect(serverLog).toMatch(/Ollama\s+http:\/\/127\.0\.0\.1:\d+ \(demo backend\): not published/);
  });

  it('runs the quick-start commands in one shell (KEY carries over), then the others in README order', async () => {
    const quick = commands.filter((c) => PLANS[c]?.kind === 'quickstart' && c !== 'npm start');
    // one bash session; each command's output and status go to their own files
    const script = quick.map((c, i) => `{ ${SUBSTITUTIONS(c)} ; } > out.${i} 2>&1; echo $? > rc.${i}`).join('\n');
    bash(script);
    quick.forEach((c, i) => {
      const run = { code: Number(readFileSync(join(sandbox, `rc.${i}`), 'utf8')), out: readFileSync(join(sandbox, `out.${i}`), 'utf8') };
      (PLANS[c] as { expect: (r: Run) => void }).expect(run);
    });
    // the others use what the quick start left behind (policy.yaml), as a reader's shell would
    for (const c of commands) {
      const plan = PLANS[c]!;
      if (plan.kind === 'sandbox') plan.expect(bash(SUBSTITUTIONS(c)));
      if (plan.kind === 'long-running') {
        const extra = plan.extraArgs?.() ?? '';
        const child = spawn('bash', ['-c', `exec ${SUBSTITUTIONS(c)}${extra} 2>&1`], { cwd: sandbox, env, stdio: ['ignore', 'pipe', 'ignore'] });
        try {
          let log = '';
          const url = await new Promise<string>((res, rej) => {
            const t = setTimeout(() => rej(new Error(`${c}: not ready within 60 s:\n${log}`)), 60_000);
            child.stdout.on('data', (b: Buffer) => {
              log += b.toString();
              const m = plan.ready.exec(log);
              if (m) {
                clearTimeout(t);
                res(m[1]!);
              }
            });
            child.once('exit', (code) => rej(new Error(`${c} exited ${code}:\n${log}`)));
          });
          await plan.then(url);
        } finally {
          // wait for the exit, so the next server can take the same port
          const exited = child.exitCode !== null ? Promise.resolve() : new Promise<void>((res) => child.once('exit', () => res()));
          child.kill('SIGTERM');
          await exited;
        }
      }
    }
  }, 300_000); // about 20 CLI runs and three servers, each starting tsx: minutes on a busy 2-core machine
});
