import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // The real-peer suite needs installed peers and its own global setup: `npm run test:peers`.
    exclude: [...configDefaults.exclude, 'tests/peers/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites bind loopback ports and spawn servers; two cores do not gain from more.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
