import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isTimeZone } from "../identity/days.js";
import { REPORTS } from "../reports/definitions.js";
import type { RawParams } from "../reports/params.js";
import type { Report, ReportContext } from "../reports/report.js";
import type { WorkspaceRecord } from "../storage/types.js";
import { unpairedSurrogate } from "../tracking/normalize.js";
import { authenticate } from "./auth.js";
import { sendTable } from "./csv.js";
import { HttpError } from "./errors.js";
import type { Services } from "./services.js";

function object(body: unknown, what: string): RawParams {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "invalid_request", `${what} must be a JSON object`);
  }
  // The database can neither store nor parse back text that is not well-formed Unicode.
  const unpaired = unpairedSurrogate(body, "");
  if (unpaired) throw new HttpError(400, "invalid_parameter", unpaired);
  return body as RawParams;
}

/** A report by name: only the table's own entries, not what every object inherits (constructor, toString). */
function reportNamed(name: string): Report | undefined {
  return Object.hasOwn(REPORTS, name) ? REPORTS[name] : undefined;
}

/** Reports, their saved parameters, and the workspace settings they depend on. */
export function registerReportRoutes(app: FastifyInstance, services: Services): void {
  const now = services.now ?? Date.now;
  const context = (workspace: WorkspaceRecord): ReportContext => {
    const settings = services.storage.settings(workspace.id);
    return { workspaceId: workspace.id, ...settings, now: now() };
  };

  async function runReport(
    request: FastifyRequest,
    reply: FastifyReply,
    workspace: WorkspaceRecord,
    name: string,
    raw: RawParams,
  ) {
    const report = reportNamed(name);
    if (!report)
      throw new HttpError(404, "not_found", `no report named "${name}"; reports: ${Object.keys(REPORTS).join(", ")}`);
    const plan = report.plan(raw, context(workspace));
    const started = performance.now();
    const result = await report.run(services.storage.reports, plan);
    const ms = performance.now() - started;
    services.metrics?.reportSeconds.observe({ report: name }, ms / 1000);
    request.log.debug({ report: name, ms }, "report");
    return sendTable(request, reply, report.csv(result), result);
  }

  app.route({
    method: ["GET", "POST"],
    url: "/api/v1/reports/:name",
    handler: async (request, reply) => {
      const workspace = await authenticate(services, request);
      const { name } = request.params as { name: string };
      const report = reportNamed(name);
      if (report && report.method !== request.method) {
        throw new HttpError(
          405,
          "method_not_allowed",
          `the ${name} report is ${report.method} /api/v1/reports/${name}`,
        );
      }
      const raw =
        request.method === "GET" ? (request.query as RawParams) : object(request.body, "the report's parameters");
      return runReport(request, reply, workspace, name, raw);
    },
  });

  app.get("/api/v1/settings", async (request) => services.storage.settings((await authenticate(services, request)).id));

  app.put("/api/v1/settings", async (request) => {
    const workspace = await authenticate(services, request);
    const body = object(request.body, "settings");
    const current = services.storage.settings(workspace.id);
    const timeZone = body.timeZone ?? current.timeZone;
    if (typeof timeZone !== "string" || !isTimeZone(timeZone)) {
      throw new HttpError(400, "invalid_parameter", "timeZone: must be an IANA time zone name such as Europe/Paris");
    }
    const systemEvents = body.systemEvents ?? current.systemEvents;
    if (!Array.isArray(systemEvents) || systemEvents.some((e) => typeof e !== "string")) {
      throw new HttpError(400, "invalid_parameter", "systemEvents: must be a list of track event names");
    }
    const settings = { timeZone, systemEvents: [...new Set(systemEvents as string[])] };
    await services.storage.setSettings(workspace.id, settings);
    return settings;
  });

  app.get("/api/v1/saved-reports", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const saved = await services.storage.savedReports(workspace.id);
    return sendTable(request, reply, saved, { savedReports: saved }, ["id", "name", "report", "params", "createdAt"]);
  });

  app.post("/api/v1/saved-reports", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const body = object(request.body, "a saved report");
    const { name, report, params } = body;
    if (typeof name !== "string" || name.trim() === "" || name.length > 200) {
      throw new HttpError(400, "invalid_parameter", "name: must be a non-empty string of at most 200 characters");
    }
    if (typeof report !== "string" || !reportNamed(report)) {
      throw new HttpError(400, "invalid_parameter", `report: must be one of ${Object.keys(REPORTS).join(", ")}`);
    }
    const parameters = object(params ?? {}, "params");
    // Refuse parameters the report would refuse, now rather than when someone opens it.
    reportNamed(report)?.plan(parameters, context(workspace));
    const saved = {
      id: randomUUID(),
      name: name.trim(),
      report,
      params: parameters,
      createdAt: new Date(now()).toISOString(),
    };
    await services.storage.saveReport(workspace.id, saved);
    return reply.status(201).send(saved);
  });

  app.get("/api/v1/saved-reports/:id/result", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const { id } = request.params as { id: string };
    const saved = (await services.storage.savedReports(workspace.id)).find((s) => s.id === id);
    if (!saved) throw new HttpError(404, "not_found", `no saved report with id "${id}"`);
    return runReport(request, reply, workspace, saved.report, saved.params);
  });

  app.delete("/api/v1/saved-reports/:id", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const { id } = request.params as { id: string };
    if (!(await services.storage.deleteSavedReport(workspace.id, id))) {
      throw new HttpError(404, "not_found", `no saved report with id "${id}"`);
    }
    return reply.status(204).send();
  });
}
