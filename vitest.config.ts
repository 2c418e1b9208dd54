import { defineConfig } from "vitest/config";

// One run over every workspace (the turborepo with-vitest layout): each
// package keeps its own vitest.config.ts and can also be tested alone.
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "test"],
  },
});
