/** The `measurement:` config section and the configuration digest the proxy records. */
import { describe, expect, it } from 'vitest';
import { ConfigError, envToRaw, validateConfig } from '../../src/proxy/config.ts';
import { canonicalConfig, configDigest } from '../../src/proxy/config-digest.ts';

describe('measurement config', () => {
  it('defaults: auto binding, 30 s poll, boot log served, kernel paths', () => {
    expect(validateConfig({}).measurement).toEqual({
      mode: 'auto',
      pollIntervalMs: 30_000,
      images: [],
      bootLog: true,
      acpiTables: '/sys/firmware/acpi/tables',
      measurementsDir: '/sys/devices/virtual/misc/tdx_guest/measurements',
    });
  });

  it('reads every key, from YAML and env', () => {
    const m = validateConfig({
      measurement: {
        mode: 'claims',
        pollInterval: '10s',
        logFile: '/run/x.bin',
        bootLog: false,
        images: [{ role: 'open-webui', image: 'ghcr.io/open-webui/open-webui', digest: `sha256:${'a'.repeat(64)}` }],
      },
    }).measurement;
    expect(m).toMatchObject({ mode: 'claims', pollIntervalMs: 10_000, logFile: '/run/x.bin', bootLog: false });
    expect(m.images[0]!.role).toBe('open-webui');
    expect(validateConfig(envToRaw({ RATLS_MEASUREMENT: 'off', RATLS_MEASUREMENT_POLL: '0' })).measurement).toMatchObject({ mode: 'off', pollIntervalMs: 0 });
  });

  it('refuses bad values, naming the key', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ mode: 'tpm' }, /measurement\.mode/],
      [{ pollInterval: '10ms' }, /measurement\.pollInterval/],
      [{ images: [{ role: 'x', image: 'a@sha256:00', digest: `sha256:${'a'.repeat(64)}` }] }, /images\[0\]\.image/],
      [{ images: [{ role: 'x', image: 'a', digest: 'sha256:ABC' }] }, /images\[0\]\.digest/],
      [{ images: [{ role: 'x', image: 'a', digest: `sha256:${'a'.repeat(64)}`, tag: 'latest' }] }, /images\[0\]\.tag/],
      [{ logFiles: 'x' }, /measurement\.logFiles/],
    ];
    for (const [m, re] of bad) {
      expect(() => validateConfig({ measurement: m })).toThrow(ConfigError);
      expect(() => validateConfig({ measurement: m })).toThrow(re);
    }
  });
});

describe('configuration digest', () => {
  it('is SHA-384 of canonical JSON: stable, changes with the config, no credentials from URLs', () => {
    const a = validateConfig({ collateral: { pccsUrl: 'https://user:secret@pccs.example:8081' } });
    expect(configDigest(a)).toMatch(/^[0-9a-f]{96}$/);
    expect(configDigest(a)).toBe(configDigest(validateConfig({ collateral: { pccsUrl: 'https://user:secret@pccs.example:8081' } })));
    expect(configDigest(a)).not.toBe(configDigest(validateConfig({ limits: { maxBody: '1MiB' } })));
    expect(canonicalConfig(a)).not.toContain('secret');
    expect(canonicalConfig(a)).toContain('"rotateAt":"0.6666666666666666"');
    expect(JSON.parse(canonicalConfig(a))).toHaveProperty('upstreams');
  });
});
