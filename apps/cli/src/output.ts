// The subpath, not the package: --help loads this module and must not load core.
import { formatDuration } from "@rekey/core/duration";
import pc from "picocolors";
import stringWidth from "string-width";

/** Where text goes: `process.stdout`/`process.stderr` in the binary, a buffer in tests. */
export interface TextSink {
  write(text: string): unknown;
}

/**
 * Version of every `--json` document this CLI prints; bumped only on a breaking change.
 * 2: core's JSON vocabulary (`@rekey/core/vocabulary`): status, rotate, recover, agents list
 * and errors first, then every other command's document (docs/json-vocabulary.md).
 */
export const JSON_SCHEMA_VERSION = 2;

/**
 * A key-free error as the CLI prints it: core's error vocabulary (`errorView(errorFacts(...))`,
 * see docs/json-vocabulary.md), or a usage error. Printed as is with `--json`.
 */
export interface PrintableError {
  code: string;
  message: string;
  hint?: string | undefined;
  principal?: { kind: "operator" | "agent"; agent_id?: number | undefined } | undefined;
  cooldown_until?: string | undefined;
  cooldown_remaining_seconds?: number | undefined;
  retry_after_seconds?: number | undefined;
  recovery?: string | undefined;
  issues?: string[] | undefined;
}

export type Colors = ReturnType<typeof pc.createColors>;

export interface OutputOptions {
  stdout: TextSink;
  stderr: TextSink;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** Colours on stdout (a terminal and no NO_COLOR). */
  color: boolean;
  /** Instants in local time with the zone (stdout is a terminal); ISO-8601 UTC otherwise. */
  localTime?: boolean;
  /** The zone for local time (tests); default the system's. */
  timeZone?: string | undefined;
}

/** Shows an ISO-8601 instant to a person: see {@link formatInstant}. */
export type TimeFormat = (iso: string) => string;

/** How every command prints: one JSON document with `--json`, readable text otherwise. */
export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly colors: Colors;
  /** An instant for the human output: local time with the zone on a terminal, else ISO UTC. */
  readonly time: TimeFormat;
  /** The command's result: `{ schemaVersion, command, ...payload }` on stdout, or the human text. */
  result(command: string, payload: Record<string, unknown>, human: () => string): void;
  /** A note for a person, on stderr; silent with `--json` or `--quiet`. */
  note(text: string): void;
  /** A detail for `--verbose`, on stderr. */
  debug(text: string): void;
  /** An error: `{ schemaVersion, error: {...} }` on stderr with `--json`, readable text otherwise. */
  error(error: PrintableError): void;
}

/** Builds the {@link Output} for one run. */
export function createOutput(options: OutputOptions): Output {
  const colors = pc.createColors(options.color);
  const time: TimeFormat =
    options.localTime === true ? (iso) => formatInstant(iso, options.timeZone) : (iso) => iso;
  return {
    json: options.json,
    quiet: options.quiet,
    colors,
    time,
    result(command, payload, human) {
      if (options.json) {
        options.stdout.write(
          `${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, command, ...payload }, null, 2)}\n`,
        );
        return;
      }
      const text = human();
      if (text !== "") options.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    },
    note(text) {
      if (!options.json && !options.quiet) options.stderr.write(`${text}\n`);
    },
    debug(text) {
      if (options.verbose && !options.json) options.stderr.write(`${colors.dim(text)}\n`);
    },
    error(error) {
      if (options.json) {
        options.stderr.write(
          `${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, error }, null, 2)}\n`,
        );
        return;
      }
      options.stderr.write(formatHumanError(error, colors, time));
    },
  };
}

function formatHumanError(error: PrintableError, colors: Colors, time: TimeFormat): string {
  const lines = [`${colors.red("error:")} ${error.message} ${colors.dim(`(${error.code})`)}`];
  if (error.cooldown_until !== undefined) {
    const remaining =
      error.cooldown_remaining_seconds === undefined
        ? ""
        : ` (${formatDuration(error.cooldown_remaining_seconds)} left)`;
    lines.push(`  cooldown until ${time(error.cooldown_until)}${remaining}`);
  }
  if (error.recovery !== undefined) lines.push(`  recovery: ${error.recovery}`);
  for (const issue of error.issues ?? []) lines.push(`  - ${issue}`);
  if (error.hint !== undefined) lines.push(`  ${colors.cyan("hint:")} ${error.hint}`);
  return `${lines.join("\n")}\n`;
}

/**
 * "2026-12-02 15:10:44 CET": an ISO-8601 instant in local time (or `timeZone`) with the zone,
 * for people at a terminal. Anything that is not an instant is returned as it is.
 */
export function formatInstant(iso: string, timeZone?: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  }).formatToParts(date);
  const part = (type: Intl.DateTimeFormatPartTypes) =>
    parts.find((entry) => entry.type === type)?.value ?? "";
  return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}:${part("second")} ${part("timeZoneName")}`;
}

/**
 * A plain text table: a header row, a rule, then the rows; columns padded to fit. Widths are
 * what a terminal shows (colour codes take none, a CJK character or an emoji takes two), so
 * coloured and non-ASCII cells line up.
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(stringWidth(header), ...rows.map((row) => stringWidth(row[column] ?? ""))),
  );
  const pad = (cell: string, width: number) =>
    `${cell}${" ".repeat(Math.max(0, width - stringWidth(cell)))}`;
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => pad(cell, widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join(
    "\n",
  );
}

/** Aligned `label: value` lines; undefined values are left out. */
export function formatFields(fields: Array<[string, string | undefined]>): string {
  const shown = fields.filter((field): field is [string, string] => field[1] !== undefined);
  const width = Math.max(0, ...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${`${label}:`.padEnd(width + 1)} ${value}`).join("\n");
}
