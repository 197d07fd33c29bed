import { execFileSync } from "node:child_process";

/**
 * Vitest global setup of the apps whose tests run their own built binary (dist/): builds it
 * from the current source once, before any test file starts. (A build in one file's beforeAll
 * emptied dist/ while other files, run in parallel on a machine with more than two cores,
 * executed it.)
 * @param {{ config: { root: string } }} project
 */
export default function setup(project) {
  execFileSync(process.execPath, ["build.mjs"], { cwd: project.config.root, stdio: "inherit" });
}
