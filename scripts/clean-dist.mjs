// Empties the package's dist/ before tsc writes it: tsc never deletes, so a module removed from
// src/ (or a reverted one) would otherwise stay in dist/ and ship in the packed package.
import { rm } from "node:fs/promises";

await rm(new URL("dist", `file://${process.cwd()}/`), { recursive: true, force: true });
