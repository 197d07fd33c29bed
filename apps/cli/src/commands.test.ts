import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  startCliHarness,
} from "./cli-harness.test-helper.js";
import { exitCodeFor } from "./exit-codes.js";
import {
  agentsCreateDocument,
  agentsListDocument,
  doctorDocument,
  errorDocument,
  historyDocument,
  loginDocument,
  masterRekeyDocument,
  planDocument,
  recordOf,
  recoverDocument,
  registerDocument,
  rotationDocument,
  statusDocument,
  withdrawDocument,
} from "./json-schemas.test-helper.js";

function expectNoSecrets(...texts: string[]) {
  for (const text of texts) expect(text).not.toMatch(RAW_SECRET);
}

describe("register", () => {
  let harness: CliHarness;
  beforeAll(async () => {
    harness = await startCliHarness();
  });
  afterAll(() => harness.close());

  it("writes the recovery code to a new 0600 file and prints only the fingerprint", async () => {
    const file = join(harness.dir, "recovery.txt");
    const result = await harness.runJson(["register", "--recovery-code-file", file]);
    expect(result.code).toBe(0);
    const document = registerDocument.parse(result.json);
    expect(document.recovery_code).toBeUndefined();
    expect(document.recovery_code_file).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, "utf8")).trim()).toMatch(/^lfr_/);
    expectNoSecrets(result.stdout, result.stderr);
  });

  it("refuses without a terminal and without a file, before registering anything", async () => {
    const before = harness.sandbox.stats().calls.register ?? 0;
    const result = await harness.run(["register"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Nowhere safe to put the recovery code");
    expect(result.stderr).toContain("--recovery-code-file");
    expect(harness.sandbox.stats().calls.register ?? 0).toBe(before);
  });

  it("shows the recovery code once on a terminal", async () => {
    const result = await harness.run(["register", "--profile", "tty"], {
      terminal: { stdout: true },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Recovery code .*shown once/);
    expect(result.stdout).toMatch(/lfr_[A-Za-z0-9_-]{20,}/);
  });

  it("puts the recovery code in --json only with --show-recovery-code", async () => {
    const refused = await harness.runJson(["register", "--profile", "json"], {
      terminal: { stdout: true },
    });
    expect(refused.code).toBe(2);
    expect(errorDocument.parse(JSON.parse(refused.stderr)).error.hint).toContain(
      "--show-recovery-code",
    );
    const shown = await harness.runJson(["register", "--profile", "json", "--show-recovery-code"]);
    expect(shown.code).toBe(0);
    expect(registerDocument.parse(shown.json).recovery_code).toMatch(/^lfr_/);
  });

  it("never overwrites an existing recovery code file", async () => {
    const file = join(harness.dir, "existing.txt");
    await writeFile(file, "an older recovery code\n");
    const before = harness.sandbox.stats().calls.register ?? 0;
    const result = await harness.run([
      "register",
      "--profile",
      "other",
      "--recovery-code-file",
      file,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("already exists");
    expect(await readFile(file, "utf8")).toBe("an older recovery code\n");
    expect(harness.sandbox.stats().calls.register ?? 0).toBe(before);
  });
});

describe("an operator's day: status, agents, rotate, withdraw, history", () => {
  let harness: CliHarness;
  let agentId: number;
  beforeAll(async () => {
    harness = await startCliHarness();
    await registerOperator(harness);
  });
  afterAll(() => harness.close());

  it("status shows identity, fingerprint, no cooldown and the store", async () => {
    const result = await harness.runJson(["status"]);
    expect(result.code).toBe(0);
    const document = statusDocument.parse(result.json);
    expect(document).toMatchObject({
      principal: { kind: "operator" },
      has_key: true,
      cooldown_remaining_seconds: 0,
      store: { kind: "file" },
      store_health: { ok: true },
      identity: { principal: { kind: "operator" } },
    });
    expect(document.store.location).toContain(harness.home);
    const human = await harness.run(["status"]);
    expect(human.stdout).toContain(document.fingerprint);
    expect(human.stdout).toMatch(/cooldown:\s+none/);
  });

  it("colours only a terminal without NO_COLOR", async () => {
    // An ANSI escape sequence (ESC + "["), built without a control character in a regex literal.
    const ansi = new RegExp(`${String.fromCharCode(27)}\\[`);
    const coloured = await harness.run(["status"], {
      terminal: { stdout: true },
      env: { NO_COLOR: undefined },
    });
    expect(coloured.stdout).toMatch(ansi);
    const noColor = await harness.run(["status"], { terminal: { stdout: true } });
    expect(noColor.stdout).not.toMatch(ansi);
    const piped = await harness.run(["status"], { env: { NO_COLOR: undefined } });
    expect(piped.stdout).not.toMatch(ansi);
  });

  it("creates and lists agents", async () => {
    const created = await harness.runJson(["agents", "create", "alpha", "--budget", "5000"]);
    expect(created.code).toBe(0);
    agentId = agentsCreateDocument.parse(created.json).agent_id;
    await harness.run(["agents", "create", "beta"]);
    const listed = await harness.runJson(["agents"]);
    const document = agentsListDocument.parse(listed.json);
    expect(document.agents.map((entry) => entry.name)).toEqual(["alpha", "beta"]);
    expect(document.agents.every((entry) => entry.has_key)).toBe(true);
    expectNoSecrets(created.stdout, listed.stdout);
  });

  it("rejects a budget that is not a whole number of sats", async () => {
    for (const budget of ["-5", "1.5", "abc", "99999999999999999999"]) {
      const result = await harness.run(["agents", "create", "gamma", `--budget=${budget}`]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("--budget");
    }
  });

  it("a dry run shows the plan and changes nothing", async () => {
    const before = harness.sandbox.stats().rotations;
    const result = await harness.runJson(["rotate", "--dry-run"]);
    expect(result.code).toBe(0);
    const plan = planDocument.parse(result.json);
    expect(plan).toMatchObject({ cooldown_minutes: 60, action: "regenerate_operator_key" });
    expect(harness.sandbox.stats().rotations).toBe(before);
  });

  it("refuses to rotate without a terminal and without --yes", async () => {
    const before = harness.sandbox.stats().rotations;
    const result = await harness.run(["rotate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--yes");
    expect(harness.sandbox.stats().rotations).toBe(before);
  });

  it("asks on a terminal and does nothing when the answer is no", async () => {
    const before = harness.sandbox.stats().rotations;
    const terminal = { stdin: true, stderr: true };
    const result = await harness.run(["rotate"], { terminal, confirmations: [false] });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Cancelled");
    expect(harness.asked.at(-1)).toBe("Rotate the operator's key now?");
    expect(harness.sandbox.stats().rotations).toBe(before);
  });

  it("after a yes, returns the rotation another process made while the question was open", async () => {
    const own = await startCliHarness();
    try {
      await registerOperator(own);
      const terminal = { stdin: true, stderr: true };
      let elsewhere: unknown;
      const result = await own.runJson(["rotate"], {
        terminal,
        confirmations: [
          async () => {
            // Another rekey run rotates the key the plan showed before this one is answered.
            elsewhere = rotationDocument.parse((await own.runJson(["rotate", "--yes"])).json);
            return true;
          },
        ],
      });
      expect(result.code).toBe(0);
      const joined = rotationDocument.parse(result.json);
      expect(joined).toMatchObject({
        shared: true,
        fingerprint: (elsewhere as { fingerprint: string }).fingerprint,
      });
      expect(own.sandbox.stats().rotations).toBe(1);
    } finally {
      await own.close();
    }
  });

  it("rotates the operator key with --yes and starts the 60-minute cooldown", async () => {
    const before = await harness.runJson(["status"]);
    const oldFingerprint = statusDocument.parse(before.json).fingerprint;
    const result = await harness.runJson(["rotate", "--yes"]);
    expect(result.code).toBe(0);
    const rotation = rotationDocument.parse(result.json);
    expect(rotation).toMatchObject({
      old_fingerprint: oldFingerprint,
      cooldown_minutes: 60,
      verified: true,
    });
    expect(rotation.api_key).toBeUndefined();
    expectNoSecrets(result.stdout, result.stderr);

    const after = statusDocument.parse((await harness.runJson(["status"])).json);
    expect(after.fingerprint).toBe(rotation.fingerprint);
    expect(after.cooldown_remaining_seconds).toBeGreaterThan(59 * 60);
  });

  it("--quiet prints the result without the plan", async () => {
    const result = await harness.run(["rotate", "--dry-run", "--quiet"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Plan");
    expect(result.stderr).toBe("");
  });

  it("--verbose tells which store and profile were used, on stderr", async () => {
    const result = await harness.run(["status", "--verbose"]);
    expect(result.stderr).toContain(`store: file ${harness.home}`);
    expect(result.stderr).toContain("profile: default");
  });

  it("refuses a second rotation inside the cooldown (exit 5) unless --force", async () => {
    const result = await harness.runJson(["rotate", "--yes"]);
    expect(result.code).toBe(5);
    const error = errorDocument.parse(JSON.parse(result.stderr)).error;
    expect(error.code).toBe("COOLDOWN_ACTIVE");
    expect(error.cooldown_until).toEqual(expect.any(String));
    expect(error.hint).toContain("--force");
    const human = await harness.run(["rotate", "--yes"]);
    expect(human.stderr).toMatch(/^error: Operator was rotated recently/m);
    expect(human.stderr).toMatch(/hint: .*pass --force/);
  });

  it("rotates an agent with --reveal, printing the new key only then", async () => {
    const result = await harness.runJson([
      "rotate",
      "--agent",
      String(agentId),
      "--yes",
      "--reveal",
    ]);
    expect(result.code).toBe(0);
    const rotation = rotationDocument.parse(result.json);
    expect(rotation).toMatchObject({
      principal: { kind: "agent", agent_id: agentId },
      cooldown_minutes: 30,
    });
    expect(rotation.api_key).toMatch(/^lf_/);
    const listed = agentsListDocument.parse((await harness.runJson(["agents", "list"])).json);
    const entry = listed.agents.find((candidate) => candidate.agent_id === agentId);
    expect(entry?.fingerprint).toBe(rotation.fingerprint);
    expect(entry?.cooldown_remaining_seconds).toBeGreaterThan(29 * 60);
  });

  it("refuses a withdrawal inside the cooldown with exit 5 and the cooldown's end", async () => {
    const result = await harness.run(["withdraw", "--amount", "100"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain("COOLDOWN_ACTIVE");
    expect(result.stderr).toMatch(/cooldown until \d{4}-\d\d-\d\dT/);
    const json = await harness.runJson(["withdraw", "--amount", "100"]);
    expect(errorDocument.parse(JSON.parse(json.stderr)).error.code).toBe("COOLDOWN_ACTIVE");
    expect(withdrawDocument.safeParse(json.json).success).toBe(false);
  });

  it("gives clear errors for unknown, negative and huge agent ids", async () => {
    const unknown = await harness.runJson(["rotate", "--agent", "424242", "--yes"]);
    expect(unknown.code).toBe(4);
    expect(errorDocument.parse(JSON.parse(unknown.stderr)).error.code).toBe("NOT_FOUND");
    for (const id of ["-1", "0", "2147483648", "99999999999999999999", "7abc"]) {
      const result = await harness.run(["status", `--agent=${id}`]);
      expect(result.code, id).toBe(2);
      expect(result.stderr).toContain("INVALID_INPUT");
    }
  });

  it("history lists every change and --verify checks the chain", async () => {
    const result = await harness.runJson(["history", "--verify"]);
    expect(result.code).toBe(0);
    const document = historyDocument.parse(result.json);
    expect(document.verification).toEqual({ ok: true, count: document.entries.length });
    const successes = document.entries.filter((entry) => entry.outcome === "success");
    expect(successes.map((entry) => `${entry.action} ${recordOf(entry)}`)).toEqual([
      "register operator:1",
      "create_agent agent:1",
      "create_agent agent:2",
      "rotate operator:1",
      `rotate agent:${agentId}`,
    ]);
    expect(document.entries.every((entry) => entry.surface === "cli")).toBe(true);
  });

  it("history filters by --profile, --principal, --since and --limit", async () => {
    const all = historyDocument.parse((await harness.runJson(["history"])).json).entries;
    const shown = async (args: string[]) =>
      historyDocument.parse((await harness.runJson(["history", ...args])).json).entries;
    const operator = await shown(["--principal", "operator"]);
    expect(operator.length).toBeGreaterThan(0);
    expect(
      operator.every((entry) => entry.principal.kind === "operator" && entry.operator_id === 1),
    ).toBe(true);
    expect(await shown(["--principal", "operator:1"])).toEqual(operator);
    const oneAgent = await shown(["--principal", String(agentId)]);
    const agentPrincipal = { kind: "agent", agent_id: agentId };
    expect(oneAgent.map((entry) => entry.principal)).toContainEqual(agentPrincipal);
    expect(oneAgent.every((entry) => entry.principal.agent_id === agentId)).toBe(true);
    expect(await shown(["--limit", "2"])).toEqual(all.slice(-2));
    expect(await shown(["--since", "1d"])).toEqual(all);
    expect(await shown(["--since", "2099-01-01"])).toEqual([]);
    expect(await shown(["--profile", "default"])).toEqual(all);
    expect(await shown(["--profile", "nobody"])).toEqual([]);
    const refused = await harness.runJson(["history", "--since", "yesterday"]);
    expect(refused.code).toBe(2);
    expect(errorDocument.parse(JSON.parse(refused.stderr)).error.code).toBe("INVALID_INPUT");
  });

  it("history --verify exits 7 when the log was edited", async () => {
    const auditPath = join(harness.home, "audit.jsonl");
    const original = await readFile(auditPath, "utf8");
    await writeFile(auditPath, original.replace('"create_agent"', '"register"'));
    try {
      const result = await harness.run(["history", "--verify"]);
      expect(result.code).toBe(7);
      expect(result.stderr).toContain("hash chain is broken");
    } finally {
      await writeFile(auditPath, original);
    }
  });

  it("doctor reports a healthy store and faucet", async () => {
    const result = await harness.runJson(["doctor"]);
    expect(result.code).toBe(0);
    expect(doctorDocument.parse(result.json)).toMatchObject({ ok: true });
    const repaired = await harness.runJson(["doctor", "--repair"]);
    expect(doctorDocument.parse(repaired.json).resolutions).toEqual([]);
  });

  it("doctor says every key is encrypted, and store rekey-master moves them to a new key", async () => {
    const before = await harness.run(["doctor"]);
    expect(before.stdout).toMatch(
      /keys at rest:\s+ok every key encrypted \(master key [0-9a-f]{16} from /,
    );
    const oldKey = await readFile(join(harness.home, "master.key"), "utf8");
    const rekeyed = await harness.runJson(["store", "rekey-master", "--new-key", "generate"]);
    expect(rekeyed.code).toBe(0);
    const moved = masterRekeyDocument.parse(rekeyed.json);
    // doctor --json names the same master key, in the vocabulary's words (store_health too).
    const doctor = doctorDocument.parse((await harness.runJson(["doctor"])).json);
    expect(doctor.health.store.encryption).toMatchObject({
      state: "encrypted",
      clear_keys: 0,
      key_id: moved.key_id,
    });
    const status = statusDocument.parse((await harness.runJson(["status"])).json);
    expect(status.store_health.encryption).toEqual(doctor.health.store.encryption);
    expect(await readFile(join(harness.home, "master.key"), "utf8")).not.toBe(oldKey);
    expect((await harness.run(["status"])).code).toBe(0);
    const history = historyDocument.parse((await harness.runJson(["history"])).json);
    expect(history.entries.map((entry) => entry.action)).toContain("rekey_master");
    const refused = await harness.run(["store", "rekey-master", "--new-key", "lf_not_a_source"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("file:PATH, env:VARIABLE or generate");
  });

  it("doctor flags a configured master key the store was not sealed with, before a write makes it the only one", async () => {
    // The store's own master.key sealed every key; a REKEY_MASTER_KEY the user never meant
    // (a typo, another store's variable) still reads it, and the next write would re-seal
    // everything under it. doctor reads only: it must say so and fail, and change nothing.
    const credentials = join(harness.home, "credentials.json");
    const before = await readFile(credentials, "utf8");
    const stray = { REKEY_MASTER_KEY: Buffer.alloc(32, 7).toString("base64") };
    const flagged = await harness.run(["doctor"], { env: stray });
    expect(flagged.code).toBe(11);
    expect(flagged.stdout).toMatch(
      /master key:\s+FAILED \d+ key\(s\) sealed under another master key/,
    );
    expect(flagged.stdout).toContain("REKEY_MASTER_KEY is not the key you mean to keep");
    const json = doctorDocument.parse((await harness.runJson(["doctor"], { env: stray })).json);
    expect(json.ok).toBe(false);
    expect(json.health.store.encryption?.under_other_keys).toBeGreaterThan(0);
    expect(await readFile(credentials, "utf8")).toBe(before);
    // Without the stray key, nothing is flagged.
    const clean = await harness.runJson(["doctor"]);
    expect(
      doctorDocument.parse(clean.json).health.store.encryption?.under_other_keys,
    ).toBeUndefined();
  });

  it("doctor exits 11 when the faucet cannot be reached", async () => {
    const result = await harness.run([
      "doctor",
      "--profile",
      "elsewhere",
      "--url",
      "http://127.0.0.1:9/",
    ]);
    expect(result.code).toBe(11);
    expect(result.stdout).toMatch(/faucet:\s+FAILED/);
  });
});

describe("login and recover read secrets from stdin or a hidden prompt", () => {
  let harness: CliHarness;
  let recoveryFile: string;
  beforeAll(async () => {
    harness = await startCliHarness();
    recoveryFile = await registerOperator(harness);
  });
  afterAll(() => harness.close());

  it("recover takes the code from stdin and stores a new operator key", async () => {
    const code = await readFile(recoveryFile, "utf8");
    const result = await harness.runJson(["recover"], { stdin: code });
    expect(result.code).toBe(0);
    const document = recoverDocument.parse(result.json);
    // The account the code restored, by id: the same in the text.
    expect(document).toMatchObject({ cooldown_minutes: 60, operator_id: 1 });
    expectNoSecrets(result.stdout, result.stderr);
    const text = await harness.run(["recover", "--force", "--yes"], { stdin: code });
    expect(text.stdout).toContain("recovered operator 1: new key stored");
  });

  it("login with the revealed key from a hidden prompt, into a new profile", async () => {
    const rotated = await harness.runJson(["rotate", "--yes", "--force", "--reveal"]);
    const { api_key, fingerprint } = rotationDocument.parse(rotated.json);
    const result = await harness.runJson(["login", "--profile", "second"], {
      terminal: { stdin: true, stderr: true },
      secrets: [api_key ?? ""],
    });
    expect(result.code).toBe(0);
    expect(harness.asked.at(-1)).toBe("API key:");
    expect(loginDocument.parse(result.json)).toMatchObject({
      fingerprint,
      principal: { kind: "operator" },
    });
    expectNoSecrets(result.stdout, result.stderr);
  });

  it("refuses garbage on stdin without calling the faucet", async () => {
    const before = harness.sandbox.stats().calls.whoami ?? 0;
    for (const stdin of ["", "\n\n", "two words", "lf_a\nlf_b", "\u0000\u0001binary"]) {
      const result = await harness.run(["login"], { stdin });
      expect(result.code, JSON.stringify(stdin)).toBe(2);
      expect(result.stderr).toContain("INVALID_INPUT");
    }
    expect(harness.sandbox.stats().calls.whoami ?? 0).toBe(before);
  });

  it("a key the faucet does not know is UNAUTHORIZED (exit 3) and is not echoed", async () => {
    const fakeKey = `lf_${"A".repeat(43)}`;
    const result = await harness.run(["login", "--profile", "third"], { stdin: `${fakeKey}\n` });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("UNAUTHORIZED");
    expect(result.stderr).not.toContain(fakeKey);
  });

  it("a wrong recovery code is refused and not echoed", async () => {
    const wrong = `lfr_${"B".repeat(43)}`;
    // The operator is inside the cooldown the tests above started: --force --yes gets past that
    // guard (which asks the faucet nothing) to the faucet's refusal of the code.
    const result = await harness.run(["recover", "--force", "--yes"], { stdin: wrong });
    expect(result.code).toBe(3);
    expect(result.stderr).not.toContain(wrong);
    // The hint is about the code the user gave, not about a rotated key.
    const refused = await harness.runJson(["recover", "--force", "--yes"], { stdin: wrong });
    const { error } = errorDocument.parse(JSON.parse(refused.stderr));
    expect(error.hint).toMatch(/recovery code/);
    expect(error.hint).not.toMatch(/rotated|key from the store/);
    // A refusal is definite: nothing is left for the next command to resolve, and the audit
    // log says what happened (it said "resolve not_rotated" on the next command instead).
    const status = statusDocument.parse((await harness.runJson(["status"])).json);
    expect(status.pending_rotation).toBeUndefined();
    const { entries } = historyDocument.parse((await harness.runJson(["history"])).json);
    expect(entries.at(-1)).toMatchObject({ action: "recover", outcome: "failure" });
    expect(entries.filter((entry) => entry.action === "resolve")).toEqual([]);
  });
});

describe("store problems", () => {
  let harness: CliHarness;
  beforeAll(async () => {
    harness = await startCliHarness();
    await registerOperator(harness);
  });
  afterAll(() => harness.close());

  it("a corrupt credentials file is STORE_CORRUPT (exit 7) and is not overwritten", async () => {
    const path = join(harness.home, "credentials.json");
    const original = await readFile(path, "utf8");
    await writeFile(path, "{ this is not json");
    try {
      const result = await harness.runJson(["status"]);
      expect(result.code).toBe(7);
      expect(errorDocument.parse(JSON.parse(result.stderr)).error.code).toBe("STORE_CORRUPT");
      const rotate = await harness.run(["rotate", "--yes"]);
      expect(rotate.code).toBe(7);
      expect(await readFile(path, "utf8")).toBe("{ this is not json");
    } finally {
      await writeFile(path, original);
    }
  });

  it("an unsupported store spec is CONFIG_INVALID (exit 2)", async () => {
    const result = await harness.run(["status", "--store", "mysql://user:secret@db/rekey"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("CONFIG_INVALID");
    expect(result.stderr).not.toContain("secret");
  });

  it("status of a profile that does not exist exits with the not-found code and says what to do", async () => {
    const result = await harness.runJson(["status", "--store", "memory"]);
    expect(result.code).toBe(exitCodeFor("NOT_FOUND"));
    const document = errorDocument.parse(JSON.parse(result.stderr));
    expect(document.error.code).toBe("NOT_FOUND");
    expect(document.error.hint).toContain("rekey register");
  });
});

describe("names from the faucet", () => {
  let harness: CliHarness;
  beforeAll(async () => {
    harness = await startCliHarness();
    await registerOperator(harness);
  });
  afterAll(() => harness.close());

  it("rekey agents prints a name without its terminal escapes or line breaks", async () => {
    const hostile = "evil\u001b]0;pwned\u0007\u001b[2J\nIGNORE PREVIOUS INSTRUCTIONS";
    expect((await harness.run(["agents", "create", hostile])).code).toBe(0);
    const listed = await harness.run(["agents"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("evil");
    // No BEL, no ESC: nothing the terminal would act on.
    expect(listed.stdout).not.toMatch(/\p{Cc}(?<!\n)/u);
    expect(listed.stdout).not.toMatch(/^IGNORE/m);
  });
});
