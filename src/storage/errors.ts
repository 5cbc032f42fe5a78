/** The message of a thrown value, whatever was thrown. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A failure inside a storage engine, wrapped once at the engine boundary. */
export class StorageError extends Error {
  override name = "StorageError";
  constructor(
    readonly operation: string,
    override readonly cause: unknown,
  ) {
    super(`storage ${operation} failed: ${errorMessage(cause)}`);
  }
}

/** The writer is behind; the caller should retry after `retryAfterSeconds`. */
export class OverloadedError extends Error {
  override name = "OverloadedError";
  constructor(readonly retryAfterSeconds: number) {
    super("the event writer is behind; retry later");
  }
}

/** The engine was used after close(), or before open(). */
export class EngineClosedError extends Error {
  override name = "EngineClosedError";
  constructor() {
    super("the storage engine is not open");
  }
}

/** Runs an engine operation, wrapping whatever the engine's library throws. */
export async function wrap<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StorageError || err instanceof OverloadedError || err instanceof EngineClosedError) throw err;
    throw new StorageError(operation, err);
  }
}
