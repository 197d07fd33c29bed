/**
 * A value built on its first use and shared after. For zod schemas that most commands never
 * parse with: zod builds each schema object eagerly (~10-50 µs each), so a module defining a
 * few dozen at load adds milliseconds to every command that loads it, `rekey status` included
 * (bench/README.md, "Cold start").
 */
export function lazily<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}
