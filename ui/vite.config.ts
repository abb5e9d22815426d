/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The admin API serves the built UI from ui/dist at `/`; in development Vite proxies the API.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    chunkSizeWarningLimit: 2000,
  },
  server: {
    proxy: { '/api': process.env.AXONGATE_ADMIN_URL ?? 'http://127.0.0.1:8081' },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    // A liveness deadline, not a speed bound: jsdom typing on a shared, loaded machine took 83 s once.
    testTimeout: 300000,
    pool: 'threads',
    maxWorkers: 2,
  },
});
