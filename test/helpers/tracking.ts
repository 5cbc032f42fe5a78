import { randomUUID } from "node:crypto";
import type { EventRecord, WorkspaceStats } from "../../src/storage/types.js";
import { query } from "./server.js";

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

/** Any request, with nothing added: no default headers, no default key. */
export async function send(
  url: string,
  route: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<RawResponse> {
  const res = await fetch(`${url}${route}`, {
    method: init.method ?? "POST",
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Stored events matching the filters, newest first (one page of up to 1000). */
export async function events(url: string, filters: Record<string, string>): Promise<EventRecord[]> {
  const params = new URLSearchParams({ limit: "1000", ...filters });
  const page = await query<{ events: EventRecord[]; nextCursor: string | null }>(url, `/api/v1/events?${params}`);
  return page.events;
}

export function stats(url: string): Promise<WorkspaceStats> {
  return query<WorkspaceStats>(url, "/api/v1/stats");
}

/** A label made unique, so that tests sharing a server never see each other's messages. */
export function uid(label: string): string {
  return `${label}-${randomUUID()}`;
}
