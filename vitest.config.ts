import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Suites with their own setup run on their own: the real peers (npm run test:peers) and the
    // container test, which needs an engine and images (npm run test:container).
    exclude: [...configDefaults.exclude, 'tests/peers/**', 'tests/container/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites bind loopback ports and spawn servers; two cores do not gain from more.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
