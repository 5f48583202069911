/**
 * The workbench (web/): `npx vite --config web/vite.config.ts` serves it in development, with
 * /api proxied to `glassbox serve` on 127.0.0.1:7860; `npx vite build --config web/vite.config.ts`
 * writes web/dist, which `glassbox serve` serves.
 */
/// <reference types="node" />
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 2048,
  },
  server: {
    host: '127.0.0.1',
    proxy: { '/api': { target: 'http://127.0.0.1:7860', changeOrigin: true } },
  },
  preview: {
    host: '127.0.0.1',
    proxy: { '/api': { target: 'http://127.0.0.1:7860', changeOrigin: true } },
  },
});
