import { defineProject } from "vitest/config";

export default defineProject({
  test: { include: ["**/*.test.ts"], exclude: ["**/node_modules/**"], testTimeout: 300_000, hookTimeout: 120_000 },
});
