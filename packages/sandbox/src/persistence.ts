import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { createEmptyState, deserializeState, type SandboxState } from "./state.js";

/** Writes the whole state to one file, atomically and durably. */
export interface StatePersister {
  /** Reads the file; an absent file is an empty sandbox. Throws when the file is corrupt. */
  load(): SandboxState;
  /** Replaces the file with `text` (from `serializeState`). Throws the file system error. */
  save(text: string): void;
}

/**
 * A persister for `filePath`. Saving is synchronous on purpose: Node runs nothing else until
 * the file is renamed into place, so two requests can never interleave a check and a write,
 * and a reply only goes out once its change is on disk.
 */
export function createFilePersister(filePath: string): StatePersister {
  const directory = dirname(filePath);
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(filePath, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return createEmptyState();
        throw error;
      }
      return deserializeState(text);
    },
    save(text) {
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      const temporaryPath = join(directory, `.${basename(filePath)}.${process.pid}.tmp`);
      try {
        writeDurably(temporaryPath, text);
        renameSync(temporaryPath, filePath);
      } catch (error) {
        rmSync(temporaryPath, { force: true });
        throw error;
      }
      // The rename is only durable once the directory entry is flushed too.
      const directoryHandle = openSync(directory, "r");
      try {
        fsyncSync(directoryHandle);
      } finally {
        closeSync(directoryHandle);
      }
    },
  };
}

function writeDurably(path: string, text: string): void {
  const handle = openSync(path, "w", 0o600);
  try {
    const bytes = Buffer.from(text, "utf8");
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(handle, bytes, written, bytes.length - written);
    }
    fsyncSync(handle);
  } finally {
    closeSync(handle);
  }
}
