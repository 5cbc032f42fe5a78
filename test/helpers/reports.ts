import { expect } from "vitest";
import { query, SECRET_KEY } from "./server.js";

/** A report's answer as it came: the status, and the body parsed as JSON (or its text when it is not JSON). */
export interface ReportAnswer {
  status: number;
  body: unknown;
}

type Params = Record<string, unknown>;

const search = (params: Params) =>
  new URLSearchParams(Object.entries(params).map(([name, value]): [string, string] => [name, String(value)]));

/**
 * Asks for a report with the test secret key: GET with `input` as the query parameters, or POST with
 * it as the JSON body. Returns whatever the server answered, errors included.
 */
export async function requestReport(
  t: { url: string },
  method: "GET" | "POST",
  name: string,
  input: Params,
): Promise<ReportAnswer> {
  const res =
    method === "GET"
      ? await fetch(`${t.url}/api/v1/reports/${name}?${search(input)}`, {
          headers: { authorization: `Bearer ${SECRET_KEY}` },
        })
      : await fetch(`${t.url}/api/v1/reports/${name}`, {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET_KEY}`, "content-type": "application/json" },
          body: JSON.stringify(input),
        });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, body: text };
  }
}

/** A report by GET, its parameters in the query string (values turned to strings); throws unless 200. */
export function getReport<T = unknown>(t: { url: string }, name: string, params: Params = {}): Promise<T> {
  return query<T>(t.url, `/api/v1/reports/${name}?${search(params)}`);
}

/** A report by POST, its parameters in a JSON body (funnel, activation); throws unless 200. */
export async function postReport<T = unknown>(t: { url: string }, name: string, body: Params): Promise<T> {
  const res = await requestReport(t, "POST", name, body);
  if (res.status !== 200) throw new Error(`POST ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as T;
}

/** The body of a refusal: the parameter at fault, and the error and message that explain it. */
export interface Refusal {
  parameter: string;
  error: string;
  message: string;
}

/** Asks for a report with a bad parameter and expects a 400 naming `parameter`; returns the refusal. */
export async function expectBadParameter(
  t: { url: string },
  method: "GET" | "POST",
  name: string,
  input: Params,
  parameter: string,
): Promise<Refusal> {
  const res = await requestReport(t, method, name, input);
  const label = `${method} ${name} ${JSON.stringify(input)}`;
  expect(res.status, label).toBe(400);
  const refusal = res.body as Refusal;
  expect(refusal.parameter, label).toBe(parameter);
  return refusal;
}
