import type { WorkspaceRecord } from "../../src/storage/types.js";
import { createWorkspace } from "../../src/workspaces/registry.js";
import { startTestServer, type TestServer, tempDataDir } from "./server.js";

/**
 * A server holding the default workspace (the test keys) and one more workspace per name, with fresh
 * keys. A running server reads its workspaces once, at start: they are created through its storage,
 * then the server is started again on the same data directory.
 */
export async function startWithWorkspaces(
  names: readonly string[],
  options: { env?: Record<string, string>; now?: () => number } = {},
): Promise<{ t: TestServer; workspaces: WorkspaceRecord[] }> {
  const dataDir = tempDataDir();
  const first = await startTestServer(dataDir, options);
  const workspaces: WorkspaceRecord[] = [];
  try {
    for (const name of names) workspaces.push(await createWorkspace(first.server.storage, name));
  } finally {
    await first.close();
  }
  return { t: await startTestServer(dataDir, options), workspaces };
}
