// The one way the three apps (rekey, rekey-mcp, rekey-http) are built: esbuild bundles each
// entry with every dependency inside (core, the sandbox, zod, commander, the MCP SDK,
// hono, pino, ...), so an installed app needs no other package at runtime and `npm i -g` pulls
// nothing from the registry. `splitting` keeps every `await import(...)` a lazy chunk, so a
// program loads only what the command it runs needs; the CLI is one CommonJS file instead
// (`format: "cjs"`) whose modules are evaluated on first use, for its V8 code cache.
//
// One package stays outside: `pg`, an optional peer dependency of each app, imported only when
// a `postgres://` store is opened (store-postgres loads it lazily). Bundling it would put a
// database driver in every install and need a stand-in for its native addon.
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { isBuiltin } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

/**
 * Start-up costs inside dependencies that rekey never uses, cut at build time (each found by
 * `node --cpu-prof` on a cold `rekey status`; bench/README.md has the figures):
 * - zod's `z.locales` holds ~60 translations of its messages (365 KB of the zod chunk to
 *   compile on every start); rekey uses the English messages zod configures by default, so the
 *   bundle keeps `en` only.
 * - string-width, imported, builds an `Intl.Segmenter` (ICU's break data) and a
 *   `/^\p{RGI_Emoji}$/v` literal (V8 builds the emoji set while compiling the module): ~50 ms
 *   before `rekey status` prints a line. Both serve only non-ASCII text, which its ASCII fast
 *   path never sends them, so the bundle builds each on first use.
 * - commander requires `node:child_process` at load, for executable subcommands, which rekey
 *   does not have: the bundle requires it on first spawn (~1 ms of node's own modules, with
 *   dgram and net's socket list, on every command).
 * The build fails if a dependency changes so that a cut no longer applies.
 */
const LAZY_COMMANDER_CHILD_PROCESS = [
  "const childProcess = require('node:child_process');",
  "const childProcess = { spawn: (...spawnArgs) => require('node:child_process').spawn(...spawnArgs) };",
];

const LAZY_STRING_WIDTH = [
  [
    "const segmenter = new Intl.Segmenter();",
    "let builtSegmenter; const segmenter = { segment: (text) => (builtSegmenter ??= new Intl.Segmenter()).segment(text) };",
  ],
  [
    "const rgiEmojiRegex = /^\\p{RGI_Emoji}$/v;",
    'let builtRgiEmojiRegex; const rgiEmojiRegex = { test: (text) => (builtRgiEmojiRegex ??= new RegExp("^\\\\p{RGI_Emoji}$", "v")).test(text) };',
  ],
];

export const startupCuts = {
  name: "rekey-startup-cuts",
  setup(build) {
    build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      resolveDir: dirname(args.path),
      loader: "js",
    }));
    build.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      let source = await readFile(args.path, "utf8");
      // Older majors (cli-progress uses one) build neither.
      if (!source.includes("Intl.Segmenter")) return undefined;
      for (const [eager, lazy] of LAZY_STRING_WIDTH) {
        if (source.split(eager).length !== 2) {
          throw new Error(`${args.path}: no longer holds \`${eager}\` as rekey expects`);
        }
        source = source.replace(eager, () => lazy);
      }
      return { contents: source, loader: "js" };
    });
    build.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const [eager, lazy] = LAZY_COMMANDER_CHILD_PROCESS;
      if (source.split(eager).length !== 2 || source.split("childProcess.").length !== 4) {
        throw new Error(`${args.path}: no longer uses \`${eager}\` as rekey expects`);
      }
      return { contents: source.replace(eager, () => lazy), loader: "js" };
    });
  },
};

/**
 * Where each name a barrel module (a package's index) exports is defined: name -> { file, name }.
 * Follows `export { a as b } from "./x.js"` and `export * from "./y.js"` down to the module
 * that declares the name, and reads each module's runtime exports by importing it (type exports
 * have none, and an app under `verbatimModuleSyntax` imports them with `type`).
 */
async function definitionsOf(file, seen = new Map()) {
  const known = seen.get(file);
  if (known !== undefined) return known;
  const definitions = new Map();
  seen.set(file, definitions);
  const source = await readFile(file, "utf8");
  for (const match of source.matchAll(/export\s*\{([^}]*)\}\s*from\s*"(\.[^"]+)"/g)) {
    const target = resolve(dirname(file), match[2]);
    const inner = await definitionsOf(target, seen);
    for (const specifier of match[1].split(",")) {
      const [name, alias = name] = specifier.trim().split(/\s+as\s+/);
      if (name === "" || name.startsWith("type ")) continue;
      definitions.set(alias, inner.get(name) ?? { file: target, name });
    }
  }
  for (const match of source.matchAll(/export\s*\*\s*from\s*"(\.[^"]+)"/g)) {
    const inner = await definitionsOf(resolve(dirname(file), match[1]), seen);
    for (const [name, definition] of inner) {
      if (!definitions.has(name)) definitions.set(name, definition);
    }
  }
  for (const name of Object.keys(await import(pathToFileURL(file).href))) {
    if (!definitions.has(name)) definitions.set(name, { file, name });
  }
  return definitions;
}

/**
 * Imports from a barrel package (`@rekey/core`) go straight to the modules that define the
 * names. In the CommonJS bundle each module is evaluated on first use, but evaluating an index
 * evaluates every module it re-exports: `rekey status`, importing two functions from
 * `@rekey/core`, evaluated 89 of core's modules (the scheduler, luxon, every delivery target, the
 * JSON vocabulary's zod schemas), 10-20 ms of a ~150 ms command (bench/README.md, "Cold start").
 * Source code still imports the package; only the bundle's wiring changes. Dynamic imports and
 * `import type` stay as they are; a name the barrel does not export fails the build.
 */
export function barrelImports(packageNames) {
  return {
    name: "rekey-barrel-imports",
    setup(build) {
      const barrels = new Map();
      const definitionsFor = async (packageName, resolveDir) => {
        let loading = barrels.get(packageName);
        if (loading === undefined) {
          loading = build
            .resolve(packageName, { kind: "import-statement", resolveDir })
            .then((resolved) => {
              if (resolved.errors.length > 0) throw new Error(`cannot resolve ${packageName}`);
              return definitionsOf(resolved.path);
            });
          barrels.set(packageName, loading);
        }
        return loading;
      };
      const pattern = new RegExp(
        `import\\s*\\{([^}]*)\\}\\s*from\\s*"(${packageNames.map((name) => name.replace(/[/.]/g, "\\$&")).join("|")})";?`,
        "g",
      );
      build.onLoad({ filter: /\.(ts|js)$/ }, async (args) => {
        if (args.path.includes("node_modules")) return undefined;
        const source = await readFile(args.path, "utf8");
        if (!packageNames.some((name) => source.includes(`"${name}"`))) return undefined;
        const resolveDir = dirname(args.path);
        let rewritten = "";
        let last = 0;
        for (const match of source.matchAll(pattern)) {
          const definitions = await definitionsFor(match[2], resolveDir);
          const byFile = new Map();
          for (const raw of match[1].split(",")) {
            const specifier = raw.trim();
            // Types are erased from the bundle; only values need a module.
            if (specifier === "" || specifier.startsWith("type ")) continue;
            const [name, local = name] = specifier.split(/\s+as\s+/);
            const definition = definitions.get(name);
            if (definition === undefined) {
              throw new Error(`${args.path}: ${match[2]} exports no value named ${name}`);
            }
            const names = byFile.get(definition.file) ?? [];
            names.push(definition.name === local ? local : `${definition.name} as ${local}`);
            byFile.set(definition.file, names);
          }
          const imports = [...byFile].map(
            ([file, names]) => `import { ${names.join(", ")} } from ${JSON.stringify(file)};`,
          );
          rewritten += source.slice(last, match.index) + imports.join(" ");
          last = match.index + match[0].length;
        }
        if (last === 0) return undefined;
        return {
          contents: rewritten + source.slice(last),
          loader: args.path.endsWith(".ts") ? "ts" : "js",
        };
      });
    },
  };
}

/** Packages an app imports at runtime without bundling them: optional peers only. */
export const OPTIONAL_PEERS = ["pg"];

const REQUIRE_SHIM =
  'import { createRequire as __rekeyCreateRequire } from "node:module"; const require = __rekeyCreateRequire(import.meta.url);';

/**
 * Bundles `entryPoints` (name → source) of the app at `appUrl` into its dist/, writes
 * dist/meta.json (esbuild's metafile, left out of the package) and returns the metafile.
 * `__REKEY_VERSION__` is the app's package.json version: the one place versions live; `define`
 * adds the app's own build-time constants.
 * `format: "esm"` (the default) splits lazy chunks; `format: "cjs"` writes one `<name>.cjs` file
 * per entry, where every `import()` becomes a `require()` of a module inside the same file
 * (evaluated on first use), so the file can run through `vm.Script` with a V8 code cache (the CLI,
 * apps/cli/src/code-cache.ts).
 * Throws when a chunk imports a package other than a node built-in or an optional peer.
 */
export async function bundleApp({
  appUrl,
  entryPoints,
  define = {},
  format = "esm",
  barrels = [],
}) {
  const manifest = JSON.parse(await readFile(new URL("package.json", appUrl), "utf8"));
  const dist = new URL("dist/", appUrl);
  await rm(dist, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: new URL(".", appUrl).pathname,
    entryPoints,
    outdir: "dist",
    bundle: true,
    platform: "node",
    target: "node20",
    define: { __REKEY_VERSION__: JSON.stringify(manifest.version), ...define },
    ...(format === "cjs"
      ? {
          format: "cjs",
          outExtension: { ".js": ".cjs" },
          // vm.Script has no module loader behind import(): every import() must be a require().
          supported: { "dynamic-import": false },
          // Node reads and V8 scans the whole file on every start, code cache or not: 1.0 MB
          // instead of 1.57 MB. Names stay (no identifier minification), so stack traces still
          // name their functions.
          minifyWhitespace: true,
          minifySyntax: true,
        }
      : {
          format: "esm",
          splitting: true,
          chunkNames: "chunks/[name]-[hash]",
          // Bundled CommonJS dependencies call require() for node built-ins; ESM has none.
          banner: { js: REQUIRE_SHIM },
        }),
    external: OPTIONAL_PEERS,
    plugins: barrels.length > 0 ? [barrelImports(barrels), startupCuts] : [startupCuts],
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
  });
  await writeFile(new URL("meta.json", dist), JSON.stringify(result.metafile));
  await writeFile(
    new URL("THIRD_PARTY_LICENSES.md", dist),
    await thirdPartyNotices(new URL(".", appUrl).pathname, result.metafile),
  );

  // Any `node:` import is a built-in, even one newer than node 20 (which isBuiltin() there denies).
  const leftOutside = Object.values(result.metafile.outputs)
    .flatMap((output) => output.imports)
    .filter(
      (entry) =>
        entry.external &&
        !entry.path.startsWith("node:") &&
        !isBuiltin(entry.path) &&
        !OPTIONAL_PEERS.includes(entry.path),
    );
  if (leftOutside.length > 0) {
    throw new Error(
      `dist/ imports packages at runtime: ${[...new Set(leftOutside.map((e) => e.path))].join(", ")}`,
    );
  }
  return result.metafile;
}

/**
 * Removes the require() shim from an entry that needs none (one module less at start-up), and
 * marks it executable with a shebang.
 */
export async function finishEntry(entryUrl) {
  const { chmod } = await import("node:fs/promises");
  const code = await readFile(entryUrl, "utf8");
  let finished = code.replace(`${REQUIRE_SHIM}\n`, "");
  if (/\brequire\(/.test(finished)) finished = code;
  if (!finished.startsWith("#!")) finished = `#!/usr/bin/env node\n${finished}`;
  await writeFile(entryUrl, finished);
  await chmod(entryUrl, 0o755);
}

/**
 * The bundle carries other people's code, whose licences (MIT, ISC, BSD, Apache-2.0) ask for
 * their notices to travel with it: dist/THIRD_PARTY_LICENSES.md lists every package the
 * bundle holds, with its licence text. Built from esbuild's metafile, so it names exactly
 * what is inside.
 */
async function thirdPartyNotices(appDir, metafile) {
  const packageDirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/@][^/]*)\//.exec(input);
    if (match?.[1] !== undefined) packageDirs.add(resolve(appDir, match[1]));
  }
  const sections = [];
  for (const dir of packageDirs) {
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    const licenseFile = (await readdir(dir)).find((name) => /^(licen[cs]e|copying)/i.test(name));
    const text =
      licenseFile === undefined
        ? `(no licence file in the package; package.json says ${manifest.license ?? "nothing"})`
        : (await readFile(join(dir, licenseFile), "utf8")).trim();
    sections.push(
      `## ${manifest.name}@${manifest.version} (${manifest.license ?? "unknown"})\n\n\`\`\`\n${text}\n\`\`\`\n`,
    );
  }
  sections.sort();
  return `# Third-party code in this bundle\n\n${sections.join("\n")}`;
}
