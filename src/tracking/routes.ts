import type { MessageType } from "../storage/types.js";

/** How a Tracking API path reads its body. */
export type RouteKind = { kind: "single"; type: MessageType } | { kind: "batch" } | { kind: "telemetry" };

const SINGLE: readonly MessageType[] = ["track", "identify", "group", "page", "screen", "alias"];

/** Every POST path of the Tracking API: June's, Segment's and their browser SDKs' short forms. */
export const TRACKING_ROUTES: ReadonlyMap<string, RouteKind> = new Map<string, RouteKind>([
  ...SINGLE.map((type) => [`/sdk/${type}`, { kind: "single", type }] as const),
  ["/sdk/batch", { kind: "batch" }],
  ["/sdk/b", { kind: "batch" }],
  ["/sdk/m", { kind: "telemetry" }],
  ...(["track", "identify", "group", "page"] as const).map(
    (type) => [`/api/${type}`, { kind: "single", type }] as const,
  ),
  ...SINGLE.map((type) => [`/v1/${type}`, { kind: "single", type }] as const),
  ...SINGLE.map((type) => [`/v1/${type[0]}`, { kind: "single", type }] as const),
  ["/v1/batch", { kind: "batch" }],
  ["/v1/b", { kind: "batch" }],
  ["/v1/m", { kind: "telemetry" }],
]);
