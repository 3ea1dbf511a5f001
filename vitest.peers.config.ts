// The real-peer suite (`npm run test:peers`): real open-webui and Ollama behind `ratls serve`, and
// the native DCAP verifiers. One stack for all files (tests/peers/global-setup.ts), files one at a
// time: the peers are heavy and the suite runs on small machines.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/peers/**/*.test.ts'],
    globalSetup: ['tests/peers/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
