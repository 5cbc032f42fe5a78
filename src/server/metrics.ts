import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What `GET /metrics` exposes, in Prometheus' text format. One registry per server. */
export class Metrics {
  readonly registry = new Registry();
  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }
  private histogram(name: string, help: string, buckets: number[]): Histogram;
  private histogram<L extends string>(name: string, help: string, buckets: number[], label: L): Histogram<L>;
  private histogram(name: string, help: string, buckets: number[], label?: string): Histogram<string> {
    return new Histogram({ name, help, buckets, labelNames: label ? [label] : [], registers: [this.registry] });
  }
  readonly messages = new Counter({
    name: "solstice_messages_total",
    help: "Messages received by the Tracking API, by outcome: accepted (stored now), duplicate, rejected.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly stored = this.counter("solstice_messages_stored_total", "Messages committed to storage.");
  readonly commitFailures = this.counter(
    "solstice_commit_failures_total",
    "Group commits that failed; their requests were answered 503.",
  );
  readonly reopens = this.counter(
    "solstice_database_reopens_total",
    "Times the database was closed and opened again after a failure invalidated it (a full disk at a checkpoint).",
  );
  readonly commitSeconds = this.histogram(
    "solstice_commit_duration_seconds",
    "Time to append and commit (fsync) one group of messages.",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly commitRows = this.histogram(
    "solstice_commit_rows",
    "Messages per group commit.",
    [1, 10, 100, 1000, 5000, 10000, 20000],
  );
  readonly reportSeconds = this.histogram(
    "solstice_report_duration_seconds",
    "Time to compute a report, by report.",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    "report",
  );
  readonly derived = this.counter(
    "solstice_messages_derived_total",
    "Stored messages taken into the identity and activity tables that profiles and reports read.",
  );
  readonly deriveFailures = this.counter(
    "solstice_derivation_failures_total",
    "Derivations of the identity and activity tables that failed; they are tried again.",
  );
  readonly deriveSeconds = this.histogram(
    "solstice_derivation_duration_seconds",
    "Time to take the messages of the commits not yet derived into the identity and activity tables.",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly compactionFailures = this.counter(
    "solstice_compaction_failures_total",
    "Compactions of the derived tables that failed; the tables stay correct, only larger, until the next.",
  );
  readonly compactionSeconds = this.histogram(
    "solstice_compaction_duration_seconds",
    "Time to compact the derived tables: rewrite = full for whole tables, recent for the days that gained rows.",
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    "rewrite",
  );
  readonly queueDepth: Gauge;
  readonly underived: Gauge;
  readonly quarantined: Gauge;

  constructor(queueDepth: () => number, underived: () => number, quarantined: () => number) {
    this.queueDepth = this.gauge(
      "solstice_writer_queue_depth",
      "Messages accepted and waiting for the writer.",
      queueDepth,
    );
    this.underived = this.gauge(
      "solstice_underived_messages",
      "Messages stored and not yet in the identity and activity tables; a read of those waits for them.",
      underived,
    );
    this.quarantined = this.gauge(
      "solstice_quarantined_messages",
      "Messages stored that the derivation could not take on: left out of the reports, tried again at each start.",
      quarantined,
    );
  }

  /** A gauge that reads its value from `read` at each scrape. */
  private gauge(name: string, help: string, read: () => number): Gauge {
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** Records one derivation, as the storage engine reports it. */
  derive(info: { messages: number; ms: number; error?: unknown }): void {
    if (info.error !== undefined) {
      this.deriveFailures.inc();
      return;
    }
    this.derived.inc(info.messages);
    this.deriveSeconds.observe(info.ms / 1000);
  }

  /** Records one compaction, as the storage engine reports it. */
  compact(info: { ms: number; full?: boolean; error?: unknown }): void {
    if (info.error !== undefined) {
      this.compactionFailures.inc();
      return;
    }
    this.compactionSeconds.observe({ rewrite: info.full ? "full" : "recent" }, info.ms / 1000);
  }

  /** Records one group commit, as the storage engine reports it. */
  commit(info: { rows: number; stored: number; ms: number; error?: unknown }): void {
    if (info.error !== undefined) {
      this.commitFailures.inc();
      return;
    }
    this.stored.inc(info.stored);
    this.commitSeconds.observe(info.ms / 1000);
    this.commitRows.observe(info.rows);
  }
}
