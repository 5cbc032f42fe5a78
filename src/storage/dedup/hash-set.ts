/**
 * A set of 128-bit hashes in one typed array: open addressing, linear probing, about 23 to 46 bytes per
 * entry. A JavaScript Set of strings costs about 550 bytes per entry and stops at 2^24 entries; this one
 * grows until memory runs out. A hash is four 32-bit words; a zero first word marks an empty slot, so
 * callers keep that word non-zero (see `messageHash`).
 */
export class HashSet128 {
  private slots: Int32Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1 << 16) {
    let capacity = 1 << 4;
    while (capacity < initialCapacity) capacity <<= 1;
    this.slots = new Int32Array(capacity * 4);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  get byteLength(): number {
    return this.slots.byteLength;
  }

  has(h0: number, h1: number, h2: number, h3: number): boolean {
    // A zero first word is never stored; without this check an all-zero hash would match an empty slot.
    if (h0 === 0) return false;
    return this.find(h0, h1, h2, h3) >= 0;
  }

  /** Adds the hash; returns false when it was already there. */
  add(h0: number, h1: number, h2: number, h3: number): boolean {
    if (h0 === 0) throw new RangeError("a hash's first word must not be zero");
    if ((this.count + 1) * 10 > (this.mask + 1) * 7) this.grow();
    const slots = this.slots;
    let i = h1 & this.mask;
    for (;;) {
      const at = i * 4;
      if (slots[at] === 0) {
        slots[at] = h0;
        slots[at + 1] = h1;
        slots[at + 2] = h2;
        slots[at + 3] = h3;
        this.count++;
        return true;
      }
      if (slots[at] === h0 && slots[at + 1] === h1 && slots[at + 2] === h2 && slots[at + 3] === h3) return false;
      i = (i + 1) & this.mask;
    }
  }

  /** Calls fn with each hash in the set, in no particular order. */
  forEach(fn: (h0: number, h1: number, h2: number, h3: number) => void): void {
    const slots = this.slots;
    for (let at = 0; at < slots.length; at += 4) {
      const h0 = slots[at] as number;
      if (h0 !== 0) fn(h0, slots[at + 1] as number, slots[at + 2] as number, slots[at + 3] as number);
    }
  }

  private find(h0: number, h1: number, h2: number, h3: number): number {
    const slots = this.slots;
    let i = h1 & this.mask;
    for (;;) {
      const at = i * 4;
      const s0 = slots[at];
      if (s0 === h0 && slots[at + 1] === h1 && slots[at + 2] === h2 && slots[at + 3] === h3) return i;
      if (s0 === 0) return -1;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2);
    this.mask = (this.mask << 1) | 1;
    this.count = 0;
    for (let at = 0; at < old.length; at += 4) {
      const h0 = old[at] as number;
      if (h0 !== 0) this.add(h0, old[at + 1] as number, old[at + 2] as number, old[at + 3] as number);
    }
  }
}
