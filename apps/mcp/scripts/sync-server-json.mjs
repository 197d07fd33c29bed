// server.json names the version twice (the server's and its npm package's); package.json is
// where the version lives. `pnpm version-packages` runs this after `changeset version`, and
// server-json.test.ts fails when the two disagree.
import { readFile, writeFile } from "node:fs/promises";

const manifestUrl = new URL("../package.json", import.meta.url);
const serverUrl = new URL("../server.json", import.meta.url);
const { name, version } = JSON.parse(await readFile(manifestUrl, "utf8"));
const server = JSON.parse(await readFile(serverUrl, "utf8"));
server.version = version;
for (const entry of server.packages) if (entry.identifier === name) entry.version = version;
await writeFile(serverUrl, `${JSON.stringify(server, null, 2)}\n`);
