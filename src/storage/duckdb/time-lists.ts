import type { DuckDBDataChunk } from "@duckdb/node-api";
import duckdb from "@duckdb/node-bindings";
import { type EntityTimes, lowerBound } from "../../reports/funnel-walk.js";

/**
 * Lists of times per entity and event, gathered from the chunks of a result whose columns are the
 * entity's number (INTEGER, from 0 without gaps), the event's number (UTINYINT, below `events`) and
 * an ascending DOUBLE[] list of times with no NULL element. An entity may have several lists per
 * event (one per actor and company, and before compaction one per derivation): each is a run, and
 * the runs are merged only when asked.
 *
 * Nothing is made per row: each chunk's columns are read as typed arrays at once, and each row is
 * kept as a few integers. An array per row, or a value per element, cost several times the rest of
 * a funnel.
 */
export class EntityTimeLists {
  private entities = 0;
  private readonly buffers: Float64Array[] = [];
  private rowEntity = new Int32Array(4096);
  private rowEvent = new Uint8Array(4096);
  private rowBuffer = new Int32Array(4096);
  private rowStart = new Int32Array(4096);
  private rowEnd = new Int32Array(4096);
  private rows = 0;

  constructor(private readonly events: number) {}

  /** Takes a chunk's rows. */
  add(chunk: DuckDBDataChunk): void {
    // rowCount asks DuckDB each time it is read.
    const count = chunk.rowCount;
    if (count === 0) return;
    // Each column's data read at once: a getItem() per row, a string's decoding above all, cost more
    // than the rest of the funnel.
    const ids = new Int32Array(columnData(chunk, 0, count * Int32Array.BYTES_PER_ELEMENT));
    const events = new Uint8Array(columnData(chunk, 1, count));
    // A list's entry is its offset and length, two 64-bit integers; their high words are 0 for
    // any chunk JavaScript could hold.
    const entries = new Uint32Array(columnData(chunk, 2, count * 16));
    const buffer = this.addBuffer(listElements(chunk, 2));
    this.reserve(this.rows + count);
    for (let r = 0; r < count; r++) {
      const start = entries[4 * r] as number;
      this.put(ids[r] as number, events[r] as number, buffer, start, start + (entries[4 * r + 2] as number));
    }
  }

  /** Keeps an array of times that runs index; returns its number for addRun. */
  addBuffer(times: Float64Array): number {
    this.buffers.push(times);
    return this.buffers.length - 1;
  }

  /**
   * A run of entity `entity`'s times of `event`: [start, end) of buffer number `buffer`, ascending.
   * Entities are numbered from 0 without gaps.
   */
  addRun(entity: number, event: number, buffer: number, start: number, end: number): void {
    this.reserve(this.rows + 1);
    this.put(entity, event, buffer, start, end);
  }

  private put(entity: number, event: number, buffer: number, start: number, end: number): void {
    if (!(event >= 0 && event < this.events && entity >= 0 && entity === Math.floor(entity))) {
      throw new RangeError(`entity ${entity} or event ${event} out of range`);
    }
    if (entity >= this.entities) this.entities = entity + 1;
    const at = this.rows++;
    this.rowEntity[at] = entity;
    this.rowEvent[at] = event;
    this.rowBuffer[at] = buffer;
    this.rowStart[at] = start;
    this.rowEnd[at] = end;
  }

  /** The number of entities seen. */
  get size(): number {
    return this.entities;
  }

  /** Calls `visit` once per entity with its times; the object is reused from one call to the next. */
  visit(visit: (times: EntityTimes) => void): void {
    // The rows in (entity, event) order, by a counting sort on entity × events + event: an entity's
    // runs of one event are then next to each other, from first[key] to first[key + 1].
    const keys = this.entities * this.events;
    const first = new Int32Array(keys + 1);
    const keyOf = (r: number) => (this.rowEntity[r] as number) * this.events + (this.rowEvent[r] as number);
    for (let r = 0; r < this.rows; r++) {
      const at = keyOf(r) + 1;
      first[at] = (first[at] as number) + 1;
    }
    for (let k = 0; k < keys; k++) first[k + 1] = (first[k + 1] as number) + (first[k] as number);
    const order = new Int32Array(this.rows);
    const next = first.slice(0, keys);
    for (let r = 0; r < this.rows; r++) {
      const key = keyOf(r);
      order[next[key] as number] = r;
      next[key] = (next[key] as number) + 1;
    }
    const view = new Times(this.events, order, first, this.buffers, this.rowBuffer, this.rowStart, this.rowEnd);
    for (let entity = 0; entity < this.entities; entity++) {
      view.entity(entity);
      visit(view);
    }
  }

  private reserve(rows: number): void {
    if (rows <= this.rowEntity.length) return;
    const size = Math.max(rows, this.rowEntity.length * 2);
    const grow = <T extends Int32Array | Uint8Array>(from: T, to: T): T => {
      to.set(from);
      return to;
    };
    this.rowEntity = grow(this.rowEntity, new Int32Array(size));
    this.rowEvent = grow(this.rowEvent, new Uint8Array(size));
    this.rowBuffer = grow(this.rowBuffer, new Int32Array(size));
    this.rowStart = grow(this.rowStart, new Int32Array(size));
    this.rowEnd = grow(this.rowEnd, new Int32Array(size));
  }
}

/** One entity's runs per event, as EntityTimes: runs `order[first[key]]` to `order[first[key + 1] - 1]`. */
class Times implements EntityTimes {
  /** The key of the entity's event 0. */
  private base = 0;
  /** Two arrays per event that merges use, kept from one entity to the next. */
  private readonly scratches: Float64Array[] = [];
  private readonly merges: ({ list: Float64Array; start: number; end: number } | null)[];

  constructor(
    private readonly events: number,
    private readonly order: Int32Array,
    private readonly first: Int32Array,
    private readonly buffers: readonly Float64Array[],
    private readonly rowBuffer: Int32Array,
    private readonly rowStart: Int32Array,
    private readonly rowEnd: Int32Array,
  ) {
    this.merges = Array.from({ length: events }, () => null);
  }

  /** Makes this the view of entity `entity`. */
  entity(entity: number): void {
    this.base = entity * this.events;
    this.merges.fill(null);
  }

  firstAtOrAfter(event: number, time: number): number {
    let found = Number.POSITIVE_INFINITY;
    const key = this.base + event;
    for (let i = this.first[key] as number; i < (this.first[key + 1] as number); i++) {
      const r = this.order[i] as number;
      const list = this.buffers[this.rowBuffer[r] as number] as Float64Array;
      const end = this.rowEnd[r] as number;
      const at = lowerBound(list, this.rowStart[r] as number, end, time);
      if (at < end && (list[at] as number) < found) found = list[at] as number;
    }
    return found;
  }

  merged(event: number): { list: Float64Array; start: number; end: number } {
    const done = this.merges[event];
    if (done) return done;
    const key = this.base + event;
    const runs = Array.from(this.order.subarray(this.first[key] as number, this.first[key + 1] as number));
    let result: { list: Float64Array; start: number; end: number };
    if (runs.length === 0) result = { list: EMPTY, start: 0, end: 0 };
    else if (runs.length === 1) {
      const r = runs[0] as number;
      result = {
        list: this.buffers[this.rowBuffer[r] as number] as Float64Array,
        start: this.rowStart[r] as number,
        end: this.rowEnd[r] as number,
      };
    } else result = this.merge(event, runs);
    this.merges[event] = result;
    return result;
  }

  /**
   * The runs as one ascending run at the start of one of `event`'s two scratch arrays: copied into
   * the first one after the other, then merged two by two between the two until one is left. The
   * scratch arrays are kept from one entity to the next; an array made per entity and event cost
   * more than the whole walk.
   */
  private merge(event: number, runs: readonly number[]): { list: Float64Array; start: number; end: number } {
    let length = 0;
    for (const r of runs) length += (this.rowEnd[r] as number) - (this.rowStart[r] as number);
    let from = this.scratch(event, 0, length);
    let to = this.scratch(event, 1, length);
    // Run boundaries: run i is [bounds[i], bounds[i + 1]).
    let bounds = [0];
    for (const r of runs) {
      const start = this.rowStart[r] as number;
      const end = this.rowEnd[r] as number;
      const at = bounds[bounds.length - 1] as number;
      copy(this.buffers[this.rowBuffer[r] as number] as Float64Array, start, end, from, at);
      bounds.push(at + end - start);
    }
    while (bounds.length > 2) {
      const next = [0];
      for (let i = 0; i + 1 < bounds.length; i += 2) {
        const lo = bounds[i] as number;
        const mid = bounds[i + 1] as number;
        const hi = bounds[i + 2] ?? mid;
        mergeRuns(from, lo, mid, hi, to);
        next.push(hi);
      }
      [from, to] = [to, from];
      bounds = next;
    }
    return { list: from, start: 0, end: length };
  }

  /** Scratch array `which` (0 or 1) of `event`, at least `length` long. */
  private scratch(event: number, which: 0 | 1, length: number): Float64Array {
    const key = event * 2 + which;
    const found = this.scratches[key];
    if (found && found.length >= length) return found;
    const made = new Float64Array(Math.max(length, 2 * (found?.length ?? 0), 1024));
    this.scratches[key] = made;
    return made;
  }
}

const EMPTY = new Float64Array(0);

/**
 * The first `bytes` bytes of a column's data in a chunk, as an array of its own: the bindings'
 * vector_get_data() copies them out of DuckDB's memory.
 */
function columnData(chunk: DuckDBDataChunk, column: number, bytes: number): ArrayBuffer {
  return aligned(duckdb.vector_get_data(duckdb.data_chunk_get_vector(chunk.chunk, column), bytes));
}

/**
 * The elements of every list in a DOUBLE[] column of a chunk, as one array that each row's entry
 * (the list's offset and length) indexes.
 */
function listElements(chunk: DuckDBDataChunk, column: number): Float64Array {
  const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
  const size = duckdb.list_vector_get_size(vector);
  const bytes = duckdb.vector_get_data(duckdb.list_vector_get_child(vector), size * Float64Array.BYTES_PER_ELEMENT);
  return new Float64Array(aligned(bytes), 0, size);
}

/** The bytes' own buffer when they fill it from its start (a copy of them otherwise). */
function aligned(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer;
}
/** Copies [start, end) of `from` to `to` at `at`: a loop, as a subarray() for set() is an object made. */
function copy(from: Float64Array, start: number, end: number, to: Float64Array, at: number): void {
  for (let i = start, k = at; i < end; i++, k++) to[k] = from[i] as number;
}

/** Merges the ascending runs [lo, mid) and [mid, hi) of `from` into the same places of `to`. */
function mergeRuns(from: Float64Array, lo: number, mid: number, hi: number, to: Float64Array): void {
  let i = lo;
  let j = mid;
  let k = lo;
  while (i < mid && j < hi) {
    const x = from[i] as number;
    const y = from[j] as number;
    if (x <= y) {
      to[k++] = x;
      i++;
    } else {
      to[k++] = y;
      j++;
    }
  }
  while (i < mid) to[k++] = from[i++] as number;
  while (j < hi) to[k++] = from[j++] as number;
}
