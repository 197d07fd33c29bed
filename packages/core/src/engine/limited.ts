/**
 * Runs `work` over `items`, at most `limit` at a time, and returns the results in the input
 * order. Bulk rotations use it to stay gentle on the faucet. Rejects with the first rejection
 * of `work` (callers that must not stop catch inside `work`).
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
