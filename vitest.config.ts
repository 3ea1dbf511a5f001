import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // the container test needs an engine and images: npm run test:container (tests/container/vitest.config.ts)
    exclude: [...configDefaults.exclude, 'tests/container/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites bind loopback ports and spawn servers; two cores do not gain from more.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
