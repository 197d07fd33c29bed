import type { CommandContext } from "../context.js";

/** A progress bar on stderr's terminal; silent with --json, --quiet, no terminal or nothing to do. */
export async function startProgress(context: CommandContext, total: number, label: string) {
  const stream = context.deps.progressStream;
  if (stream === undefined || context.output.json || context.output.quiet || total === 0) {
    return { tick() {}, stop() {} };
  }
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar(
    { stream, format: `${label} [{bar}] {value}/{total}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}
