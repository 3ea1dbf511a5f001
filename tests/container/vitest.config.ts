import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The container test (npm run test:container): scripts/container/run.sh makes the engine and the
 * image, then runs this. One file at a time: each brings up its own compose stack.
 */
export default defineConfig({
  test: {
    root: join(import.meta.dirname, '../..'),
    include: ['tests/container/**/*.test.ts'],
    globalSetup: ['tests/container/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
