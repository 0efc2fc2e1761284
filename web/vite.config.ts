import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The app is served from the API's own origin (Workers assets, the Spin
// static-file function, the native host); `npm run dev` proxies /api to a
// running `cargo xtask dev` stack so the same relative URLs work.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    // Hashed names under /assets are cached for a year by every host.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "/api": { target: "http://127.0.0.1:8787", ws: true, changeOrigin: false },
    },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
