import type { DuckDBDataChunk } from "@duckdb/node-api";
import duckdb from "@duckdb/node-bindings";
import { type EntityTimes, lowerBound } from "../../reports/funnel-walk.js";

/**
 * Lists of times per entity and event, gathered from the chunks of a result whose columns are the
 * entity's number (INTEGER, from 0 without gaps), the event's number (an integer below `events`) and an ascending DOUBLE[] list of
 * times with no NULL element. An entity may have several lists per event (one per actor and company,
 * and before compaction one per derivation): each is a run, and the runs are merged only when asked.
 *
 * Nothing is made per row: each chunk's list elements are copied once into an array of their own,
 * and each row is a few integers. An array per row, or a value per element, cost several times the
 * rest of a funnel.
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
    for (let r = 0; r < count; r++) {
      const start = entries[4 * r] as number;
      this.addRun(ids[r] as number, events[r] as number, buffer, start, start + (entries[4 * r + 2] as number));
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
    if (!(Number.isInteger(event) && event >= 0 && event < this.events)) {
      throw new RangeError(`event number ${event} out of range`);
    }
    if (!(Number.isInteger(entity) && entity >= 0)) throw new RangeError(`entity number ${entity} out of range`);
    this.entities = Math.max(this.entities, entity + 1);
    this.reserve(this.rows + 1);
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
    // The rows in entity order, by a counting sort on the entity's number.
    const entities = this.entities;
    const first = new Int32Array(entities + 1);
    for (let r = 0; r < this.rows; r++) {
      const at = (this.rowEntity[r] as number) + 1;
      first[at] = (first[at] as number) + 1;
    }
    for (let e = 0; e < entities; e++) first[e + 1] = (first[e + 1] as number) + (first[e] as number);
    const order = new Int32Array(this.rows);
    const next = first.slice(0, entities);
    for (let r = 0; r < this.rows; r++) {
      const entity = this.rowEntity[r] as number;
      order[next[entity] as number] = r;
      next[entity] = (next[entity] as number) + 1;
    }
    const view = new Times(this.events, this.buffers, this.rowBuffer, this.rowStart, this.rowEnd);
    for (let entity = 0; entity < entities; entity++) {
      view.clear();
      for (let i = first[entity] as number; i < (first[entity + 1] as number); i++) {
        const r = order[i] as number;
        view.runs[this.rowEvent[r] as number]?.push(r);
      }
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

/** One entity's runs per event, as EntityTimes. */
class Times implements EntityTimes {
  /** Per event, the rows (runs) of the entity. */
  readonly runs: number[][];
  /** Two arrays per event that merges use, kept from one entity to the next. */
  private readonly scratches: Float64Array[] = [];
  private readonly merges: ({ list: Float64Array; start: number; end: number } | null)[];

  constructor(
    events: number,
    private readonly buffers: readonly Float64Array[],
    private readonly rowBuffer: Int32Array,
    private readonly rowStart: Int32Array,
    private readonly rowEnd: Int32Array,
  ) {
    this.runs = Array.from({ length: events }, () => []);
    this.merges = Array.from({ length: events }, () => null);
  }

  clear(): void {
    for (const runs of this.runs) runs.length = 0;
    this.merges.fill(null);
  }

  firstAtOrAfter(event: number, time: number): number {
    let found = Number.POSITIVE_INFINITY;
    for (const r of this.runs[event] ?? []) {
      const list = this.buffers[this.rowBuffer[r] as number] as Float64Array;
      const end = this.rowEnd[r] as number;
      const i = lowerBound(list, this.rowStart[r] as number, end, time);
      if (i < end && (list[i] as number) < found) found = list[i] as number;
    }
    return found;
  }

  merged(event: number): { list: Float64Array; start: number; end: number } {
    const done = this.merges[event];
    if (done) return done;
    const runs = this.runs[event] ?? [];
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

/** The first `bytes` bytes of a column's data in a chunk, copied (the chunk's memory is DuckDB's). */
function columnData(chunk: DuckDBDataChunk, column: number, bytes: number): ArrayBuffer {
  const data = duckdb.vector_get_data(duckdb.data_chunk_get_vector(chunk.chunk, column), bytes);
  return data.buffer.slice(data.byteOffset, data.byteOffset + bytes) as ArrayBuffer;
}

/**
 * The elements of every list in a DOUBLE[] column of a chunk, as one array that each row's entry
 * (DuckDBListVector's offset and length) indexes: a copy, as the chunk's memory is DuckDB's.
 */
function listElements(chunk: DuckDBDataChunk, column: number): Float64Array {
  const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
  const size = duckdb.list_vector_get_size(vector);
  const bytes = duckdb.vector_get_data(duckdb.list_vector_get_child(vector), size * Float64Array.BYTES_PER_ELEMENT);
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
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
