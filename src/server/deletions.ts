import type { Logger } from "pino";
import type { StorageEngine } from "../storage/types.js";

/** Waits before retrying a failed deletion: doubled after each failure, from the first to the last. */
export interface RetryDelays {
  firstMs: number;
  maxMs: number;
}

const DEFAULT_DELAYS: RetryDelays = { firstMs: 1_000, maxMs: 300_000 };

/**
 * Carries out deletion requests in the background, one at a time, in the order they were made. A
 * request that fails (the disk full, the database being reopened) is tried again while the server
 * runs, after a delay that doubles each time, behind the requests made meanwhile; and at the next
 * start if the server stops first.
 */
export class DeletionRunner {
  private chain: Promise<void> = Promise.resolve();
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly storage: StorageEngine,
    private readonly logger: Logger,
    private readonly delays: RetryDelays = DEFAULT_DELAYS,
  ) {}

  schedule(workspaceId: string, requestId: string, failures = 0): void {
    if (this.stopped) return;
    this.chain = this.chain.then(async () => {
      if (this.stopped) return;
      try {
        const done = await this.storage.runDeletion(workspaceId, requestId);
        this.logger.info({ requestId, messagesDeleted: done.messagesDeleted }, "deletion finished");
      } catch (err) {
        const delayMs = Math.min(this.delays.firstMs * 2 ** failures, this.delays.maxMs);
        this.logger.error({ err, requestId, retryInMs: delayMs }, "deletion failed; it will be tried again");
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.schedule(workspaceId, requestId, failures + 1);
        }, delayMs);
        timer.unref();
        this.retries.add(timer);
      }
    });
  }

  /** Schedules the requests a previous run left unfinished. */
  async resume(workspaceIds: readonly string[]): Promise<void> {
    for (const workspaceId of workspaceIds) {
      for (const state of ["started", "requested"] as const) {
        for (const request of await this.storage.deletionRequests(workspaceId, state)) {
          this.schedule(workspaceId, request.id);
        }
      }
    }
  }

  /** Resolves when every scheduled deletion has run (retries waiting for their delay aside). */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Cancels the retries waiting for their delay and schedules nothing more; the next start resumes them. */
  stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    return this.chain;
  }
}
