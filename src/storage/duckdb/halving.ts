/**
 * The items of [0, count) that fail alone, found by halving: `fails(first, end)` tries items
 * [first, end) together and gives their error, or null when they pass. All of them are tried first,
 * then the two halves of each part that fails, down to single items, so k failing items among n take
 * about 2k·log2(n/k) tries and a part that passes is never split. A failure that takes several items
 * together, none failing alone, finds nothing. `fails` may throw to stop the search.
 */
export async function failingAlone<E>(
  count: number,
  fails: (first: number, end: number) => Promise<E | null>,
): Promise<{ index: number; error: E }[]> {
  const found: { index: number; error: E }[] = [];
  const search = async (first: number, end: number): Promise<void> => {
    if (end <= first) return;
    const error = await fails(first, end);
    if (error === null) return;
    if (end - first === 1) {
      found.push({ index: first, error });
      return;
    }
    const middle = Math.floor((first + end) / 2);
    await search(first, middle);
    await search(middle, end);
  };
  await search(0, count);
  return found;
}
