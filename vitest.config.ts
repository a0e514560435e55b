import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind real sockets on 127.0.0.1 with port 0, so files can run in parallel.
    fileParallelism: true,
  },
});
