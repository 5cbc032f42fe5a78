import type { Logger } from "pino";
import type { StorageEngine } from "../storage/types.js";

/** Carries out deletion requests in the background, one at a time, in the order they were made. */
export class DeletionRunner {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly storage: StorageEngine,
    private readonly logger: Logger,
  ) {}

  schedule(workspaceId: string, requestId: string): void {
    this.chain = this.chain.then(async () => {
      try {
        const done = await this.storage.runDeletion(workspaceId, requestId);
        this.logger.info({ requestId, messagesDeleted: done.messagesDeleted }, "deletion finished");
      } catch (err) {
        this.logger.error({ err, requestId }, "deletion failed; it will be retried at the next start");
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

  /** Resolves when every scheduled deletion has run. */
  idle(): Promise<void> {
    return this.chain;
  }
}
