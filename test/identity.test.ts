import { describe, expect, it } from "vitest";
import { sendBatch, serversClosedAfterEach } from "./helpers/fixtures.js";
import { query, SECRET_KEY, type TestServer, tempDataDir } from "./helpers/server.js";

/**
 * Hand-worked fixtures for identity resolution, traits, memberships and company attribution. The
 * server's clock is fixed at NOW so that "the last 30 days" is fixed too; every message carries its
 * own timestamp, so receivedAt only breaks ties.
 */
const NOW = Date.parse("2026-03-31T12:00:00Z");
const at = (day: string, time = "10:00:00") => `${day}T${time}.000Z`;

interface UserProfile {
  id: string;
  email: string | null;
  name: string | null;
  traits: Record<string, unknown>;
  traitsSetBy: Record<string, { messageId: string; at: string }>;
  companies: { id: string; name: string | null; joinedBy: { messageId: string; at: string } }[];
  anonymousIds: { anonymousId: string; linkedBy: { messageId: string; at: string } }[];
  firstSeen: string | null;
  lastSeen: string | null;
  events: number;
}

interface Company {
  id: string;
  name: string | null;
  users: number;
  events: number;
  firstSeen: string | null;
  lastSeen: string | null;
}

interface CompanyProfile extends Company {
  members: {
    userId: string;
    email: string | null;
    name: string | null;
    lastSeen: string | null;
    joinedBy: { messageId: string; at: string };
  }[];
  activity: { day: string; events: number; users: number }[];
  topEvents: { event: string; count: number }[];
}

const start = serversClosedAfterEach(NOW);

const user = (t: TestServer, id: string) => query<UserProfile>(t.url, `/api/v1/users/${encodeURIComponent(id)}`);
const company = (t: TestServer, id: string) => query<CompanyProfile>(t.url, `/api/v1/companies/${id}`);
const timeline = async (t: TestServer, params: string) =>
  (await query<{ events: { messageId: string }[] }>(t.url, `/api/v1/events?${params}`)).events.map((e) => e.messageId);

describe("identity resolution", () => {
  it("merges a visitor's earlier events into the user once an identify links them, even in a later request", async () => {
    const t = await start();
    // a1 browses on 03-01 and 03-02 before signing up; the identify on 03-03 links a1 to u1; u1 acts on 03-04.
    await sendBatch(t, [
      { type: "page", anonymousId: "a1", name: "Pricing", timestamp: at("2026-03-01"), messageId: "p1" },
      { type: "track", anonymousId: "a1", event: "Demo Booked", timestamp: at("2026-03-02"), messageId: "t1" },
    ]);
    // Before the link, a1 is a visitor: no user answers to it.
    const before = await fetch(`${t.url}/api/v1/users/a1`, {
      headers: { authorization: "Bearer sk_test_secret_key_0123456789abcdef" },
    });
    expect(before.status).toBe(404);
    await sendBatch(t, [
      { type: "identify", anonymousId: "a1", userId: "u1", timestamp: at("2026-03-03"), messageId: "i1" },
      { type: "track", userId: "u1", event: "Report Created", timestamp: at("2026-03-04"), messageId: "t2" },
    ]);
    const profile = await user(t, "u1");
    // Activity: p1, t1 (through a1) and t2; the identify is not activity.
    expect(profile.firstSeen).toBe(at("2026-03-01"));
    expect(profile.lastSeen).toBe(at("2026-03-04"));
    expect(profile.events).toBe(3);
    expect(profile.anonymousIds).toEqual([{ anonymousId: "a1", linkedBy: { messageId: "i1", at: at("2026-03-03") } }]);
    // The anonymousId finds the same user.
    expect((await user(t, "a1")).id).toBe("u1");
    // The timeline holds all four messages, newest first; the stored events are unchanged.
    expect(await timeline(t, "userId=u1")).toEqual(["t2", "i1", "t1", "p1"]);
    expect(await timeline(t, "anonymousId=a1")).toEqual(["i1", "t1", "p1"]);
  });

  it("links an alias's previousId to the userId", async () => {
    const t = await start();
    await sendBatch(t, [
      { type: "track", anonymousId: "old-id", event: "Invite Sent", timestamp: at("2026-03-05"), messageId: "t1" },
      { type: "alias", userId: "u2", previousId: "old-id", timestamp: at("2026-03-06"), messageId: "al1" },
      { type: "track", userId: "u2", event: "Invite Sent", timestamp: at("2026-03-07"), messageId: "t2" },
    ]);
    const profile = await user(t, "u2");
    expect(profile.anonymousIds).toEqual([
      { anonymousId: "old-id", linkedBy: { messageId: "al1", at: at("2026-03-06") } },
    ]);
    expect([profile.firstSeen, profile.lastSeen, profile.events]).toEqual([at("2026-03-05"), at("2026-03-07"), 2]);
  });

  it("gives an anonymousId claimed by two users to the earliest link, whatever the arrival order", async () => {
    const t = await start();
    await sendBatch(t, [
      { type: "track", anonymousId: "shared", event: "Opened", timestamp: at("2026-03-01"), messageId: "t1" },
    ]);
    // uLate's identify arrives first but is timestamped 03-05; uEarly's arrives second, timestamped 03-04: uEarly wins.
    await sendBatch(t, [
      { type: "identify", anonymousId: "shared", userId: "uLate", timestamp: at("2026-03-05"), messageId: "iL" },
    ]);
    await sendBatch(t, [
      { type: "identify", anonymousId: "shared", userId: "uEarly", timestamp: at("2026-03-04"), messageId: "iE" },
    ]);
    expect((await user(t, "shared")).id).toBe("uEarly");
    expect((await user(t, "uEarly")).events).toBe(1);
    expect((await user(t, "uLate")).events).toBe(0);
    expect((await user(t, "uLate")).anonymousIds).toEqual([]);
    // t1 belongs to uEarly only; each identify carries its own userId, so it stays with that user.
    expect(await timeline(t, "userId=uEarly")).toEqual(["iE", "t1"]);
    expect(await timeline(t, "userId=uLate")).toEqual(["iL"]);
  });

  it("breaks a timestamp tie between two links by receivedAt", async () => {
    let clock = NOW;
    const t = await start({ clock: () => clock });
    await sendBatch(t, [
      { type: "identify", anonymousId: "tie", userId: "uFirst", timestamp: at("2026-03-04"), messageId: "z1" },
    ]);
    clock += 1000;
    // Same timestamp, received a second later, and a messageId that sorts first: receivedAt decides.
    await sendBatch(t, [
      { type: "identify", anonymousId: "tie", userId: "uSecond", timestamp: at("2026-03-04"), messageId: "a1" },
    ]);
    expect((await user(t, "tie")).id).toBe("uFirst");
  });
});

describe("traits", () => {
  it("keeps the latest value of each trait by timestamp, not by arrival", async () => {
    const t = await start();
    await sendBatch(t, [
      {
        type: "identify",
        userId: "u5",
        traits: { plan: "pro", name: "Ada" },
        timestamp: at("2026-03-10"),
        messageId: "i-new",
      },
    ]);
    // Older message arriving later: its plan loses to 03-10's, its role is the only one, its email comes from the top level.
    await sendBatch(t, [
      {
        type: "identify",
        userId: "u5",
        email: "ada@top.example",
        traits: { plan: "free", role: "admin", email: "ada@traits.example" },
        timestamp: at("2026-03-01"),
        messageId: "i-old",
      },
    ]);
    const profile = await user(t, "u5");
    expect(profile.traits).toEqual({ plan: "pro", name: "Ada", role: "admin", email: "ada@top.example" });
    expect(profile.traitsSetBy.plan).toEqual({ messageId: "i-new", at: at("2026-03-10") });
    expect(profile.traitsSetBy.role).toEqual({ messageId: "i-old", at: at("2026-03-01") });
    expect([profile.email, profile.name]).toEqual(["ada@top.example", "Ada"]);
  });

  it("does not count identify and group calls as being seen", async () => {
    const t = await start();
    await sendBatch(t, [
      { type: "identify", userId: "quiet", traits: { name: "Q" }, timestamp: at("2026-03-10"), messageId: "i1" },
      {
        type: "group",
        userId: "quiet",
        groupId: "silent-co",
        traits: { name: "Silent" },
        timestamp: at("2026-03-10"),
        messageId: "g1",
      },
    ]);
    const profile = await user(t, "quiet");
    expect([profile.firstSeen, profile.lastSeen, profile.events]).toEqual([null, null, 0]);
    const co = await company(t, "silent-co");
    expect([co.firstSeen, co.lastSeen, co.events, co.users]).toEqual([null, null, 0, 1]);
    expect(co.members).toEqual([
      { userId: "quiet", email: null, name: "Q", lastSeen: null, joinedBy: { messageId: "g1", at: at("2026-03-10") } },
    ]);
  });
});

describe("companies", () => {
  it("attributes a member's events to all its companies, and an event with context.groupId to that company only", async () => {
    const t = await start();
    await sendBatch(t, [
      {
        type: "group",
        userId: "u6",
        groupId: "c1",
        traits: { name: "One" },
        timestamp: at("2026-03-01"),
        messageId: "g1",
      },
      {
        type: "group",
        userId: "u6",
        groupId: "c2",
        traits: { name: "Two" },
        timestamp: at("2026-03-01"),
        messageId: "g2",
      },
      {
        type: "group",
        userId: "u6",
        groupId: "c3",
        traits: { name: "Three" },
        timestamp: at("2026-03-01"),
        messageId: "g3",
      },
      // No context.groupId: c1, c2 and c3.
      { type: "track", userId: "u6", event: "Report Created", timestamp: at("2026-03-20"), messageId: "e1" },
      // context.groupId c2: c2 only.
      {
        type: "track",
        userId: "u6",
        event: "Report Shared",
        context: { groupId: "c2" },
        timestamp: at("2026-03-21"),
        messageId: "e2",
      },
      // context.groupId of a company u6 is not a member of: c9 only.
      {
        type: "track",
        userId: "u6",
        event: "Report Shared",
        context: { groupId: "c9" },
        timestamp: at("2026-03-22"),
        messageId: "e3",
      },
      // An event outside the last 30 days (NOW is 03-31): counts for first seen, not for "events".
      { type: "page", userId: "u6", name: "Home", timestamp: at("2026-02-01"), messageId: "e0" },
    ]);
    const list = await query<{ companies: Company[] }>(t.url, "/api/v1/companies?sort=events");
    const byId = Object.fromEntries(list.companies.map((c) => [c.id, c]));
    // Events in the last 30 days: c1 {e1}, c2 {e1, e2}, c3 {e1}, c9 {e3}.
    expect(list.companies.map((c) => [c.id, c.events, c.users])).toEqual([
      ["c2", 2, 1],
      ["c1", 1, 1],
      ["c3", 1, 1],
      ["c9", 1, 0],
    ]);
    // First seen of c1: e0 (02-01, no context.groupId); last seen: e1. c9's only activity is e3.
    expect([byId.c1?.firstSeen, byId.c1?.lastSeen]).toEqual([at("2026-02-01"), at("2026-03-20")]);
    expect([byId.c2?.firstSeen, byId.c2?.lastSeen]).toEqual([at("2026-02-01"), at("2026-03-21")]);
    expect([byId.c9?.firstSeen, byId.c9?.lastSeen, byId.c9?.name]).toEqual([at("2026-03-22"), at("2026-03-22"), null]);

    // Each profile gives the figures of its row in the list, which are worked out for every company at once.
    for (const row of list.companies) {
      const { id, name, users, events, firstSeen, lastSeen } = await company(t, row.id);
      expect({ id, name, users, events, firstSeen, lastSeen }).toEqual({
        id: row.id,
        name: row.name,
        users: row.users,
        events: row.events,
        firstSeen: row.firstSeen,
        lastSeen: row.lastSeen,
      });
    }
    const c2 = await company(t, "c2");
    expect(c2.members.map((m) => [m.userId, m.lastSeen, m.joinedBy.messageId])).toEqual([
      ["u6", at("2026-03-22"), "g2"],
    ]);
    // The last 90 days of c2: 02-01 (e0), 03-20 (e1), 03-21 (e2).
    expect(c2.activity).toEqual([
      { day: "2026-02-01", events: 1, users: 1 },
      { day: "2026-03-20", events: 1, users: 1 },
      { day: "2026-03-21", events: 1, users: 1 },
    ]);
    expect(c2.topEvents).toEqual([
      { event: "Report Created", count: 1 },
      { event: "Report Shared", count: 1 },
    ]);
    // Timelines: groupId as the Tracking API defines it; companyId with every attributed event.
    expect(await timeline(t, "groupId=c2")).toEqual(["e2", "g2"]);
    expect(await timeline(t, "companyId=c2")).toEqual(["e2", "e1", "g2", "e0"]);
    expect(await timeline(t, "companyId=c9")).toEqual(["e3"]);
  });

  it("counts a company's top events over its last 90 days, to the day, when they start within a week", async () => {
    const t = await start();
    // NOW is Tuesday 03-31: the last 90 days start on Thursday 01-01, in the week of Monday 12-29.
    // Counted: e1 (u8, 01-01), e2 (a8, linked to u8 by i1, 01-02), e3 (context.groupId edge, Sunday
    // 01-04), e4 and e5 (03-30): Edge Event 3, Late Event 2. Not counted: o1 (Wednesday 12-31) and o2
    // (Monday 12-29, context.groupId edge), the same week but before 01-01, so Old Event is not
    // listed at all; the page p1 is not a track call.
    // u8's track call of `event` at `timestamp`, with context.groupId edge when `own`.
    const track = (messageId: string, event: string, timestamp: string, own = false) => ({
      type: "track",
      userId: "u8",
      event,
      timestamp,
      messageId,
      ...(own ? { context: { groupId: "edge" } } : {}),
    });
    await sendBatch(t, [
      { type: "group", userId: "u8", groupId: "edge", timestamp: at("2025-12-01"), messageId: "g1" },
      { type: "identify", userId: "u8", anonymousId: "a8", timestamp: at("2025-12-01"), messageId: "i1" },
      track("o1", "Old Event", at("2025-12-31", "23:59:59")),
      track("o2", "Old Event", at("2025-12-29"), true),
      track("e1", "Edge Event", at("2026-01-01", "00:00:00")),
      { type: "track", anonymousId: "a8", event: "Edge Event", timestamp: at("2026-01-02"), messageId: "e2" },
      { type: "page", userId: "u8", name: "Home", timestamp: at("2026-01-02"), messageId: "p1" },
      track("e3", "Edge Event", at("2026-01-04"), true),
      track("e4", "Late Event", at("2026-03-30")),
      track("e5", "Late Event", at("2026-03-30", "11:00:00")),
    ]);
    expect((await company(t, "edge")).topEvents).toEqual([
      { event: "Edge Event", count: 3 },
      { event: "Late Event", count: 2 },
    ]);
  });

  it("makes the user of an anonymousId a member through a group call carrying only the anonymousId", async () => {
    const t = await start();
    await sendBatch(t, [
      { type: "group", anonymousId: "a-grp", groupId: "acme", timestamp: at("2026-03-02"), messageId: "g1" },
      { type: "track", anonymousId: "a-grp", event: "Opened", timestamp: at("2026-03-03"), messageId: "t1" },
    ]);
    // No user yet: the visitor is not a member, but nothing is attributed either.
    expect((await company(t, "acme")).users).toBe(0);
    await sendBatch(t, [
      { type: "identify", anonymousId: "a-grp", userId: "u-grp", timestamp: at("2026-03-04"), messageId: "i1" },
    ]);
    const acme = await company(t, "acme");
    expect([acme.users, acme.events, acme.lastSeen]).toEqual([1, 1, at("2026-03-03")]);
    expect((await user(t, "u-grp")).companies.map((c) => [c.id, c.joinedBy.messageId])).toEqual([["acme", "g1"]]);
  });

  it("lists a company's traits in key order, the same in the list, its profile and CSV", async () => {
    const t = await start();
    // Three group calls set the traits in the order zeta, alpha, mid; "name" arrives last.
    await sendBatch(t, [
      {
        type: "group",
        userId: "u-k",
        groupId: "keys",
        traits: { zeta: 1 },
        timestamp: at("2026-03-02"),
        messageId: "k1",
      },
      {
        type: "group",
        userId: "u-k",
        groupId: "keys",
        traits: { alpha: 2 },
        timestamp: at("2026-03-03"),
        messageId: "k2",
      },
      {
        type: "group",
        userId: "u-k",
        groupId: "keys",
        traits: { mid: 3, name: "Keys" },
        timestamp: at("2026-03-04"),
        messageId: "k3",
      },
    ]);
    const sorted = ["alpha", "mid", "name", "zeta"];
    for (let i = 0; i < 5; i++) {
      const list = await query<{ companies: (Company & { traits: object })[] }>(t.url, "/api/v1/companies?q=keys");
      expect(Object.keys(list.companies[0]?.traits ?? {})).toEqual(sorted);
      expect(Object.keys((await query<{ traits: object }>(t.url, "/api/v1/companies/keys")).traits)).toEqual(sorted);
    }
    const res = await fetch(`${t.url}/api/v1/companies?q=keys&format=csv`, {
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    });
    const csv = await res.text();
    expect(csv).toContain(JSON.stringify({ alpha: 2, mid: 3, name: "Keys", zeta: 1 }).replaceAll('"', '""'));
  });

  it("answers 404 JSON for unknown ids and 400 for bad list parameters", async () => {
    const t = await start();
    const headers = { authorization: "Bearer sk_test_secret_key_0123456789abcdef" };
    for (const path of ["/api/v1/companies/nope", "/api/v1/users/nobody"]) {
      const res = await fetch(`${t.url}${path}`, { headers });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe("not_found");
    }
    for (const [path, field] of [
      ["/api/v1/companies?sort=name", "sort"],
      ["/api/v1/companies?limit=0", "limit"],
      ["/api/v1/companies?cursor=garbage", "cursor"],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { headers });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message.startsWith(`${field}:`)).toBe(true);
    }
  });
});

describe("restart", () => {
  it("keeps links, traits and memberships across a restart, and resolves a link that arrives after it", async () => {
    const dataDir = tempDataDir();
    let t = await start({ dataDir });
    await sendBatch(t, [
      { type: "track", anonymousId: "a-r", event: "Opened", timestamp: at("2026-03-10"), messageId: "t1" },
      {
        type: "group",
        anonymousId: "a-r",
        groupId: "rco",
        traits: { name: "Restart Co" },
        timestamp: at("2026-03-10"),
        messageId: "g1",
      },
    ]);
    await t.close();
    t = await start({ dataDir });
    await sendBatch(t, [
      {
        type: "identify",
        anonymousId: "a-r",
        userId: "u-r",
        traits: { name: "Rita" },
        timestamp: at("2026-03-11"),
        messageId: "i1",
      },
      { type: "track", userId: "u-r", event: "Opened", timestamp: at("2026-03-12"), messageId: "t2" },
    ]);
    const profile = await user(t, "u-r");
    expect([profile.firstSeen, profile.lastSeen, profile.events, profile.name]).toEqual([
      at("2026-03-10"),
      at("2026-03-12"),
      2,
      "Rita",
    ]);
    expect(profile.companies.map((c) => [c.id, c.name])).toEqual([["rco", "Restart Co"]]);
    // Both activity events fall in the last 30 days (from 03-02 to 03-31).
    const rco = await company(t, "rco");
    expect([rco.users, rco.events, rco.firstSeen]).toEqual([1, 2, at("2026-03-10")]);
  });
});

describe("company members", () => {
  it("shows each member's email and name as its user profile does, traits of its anonymousIds included", async () => {
    const t = await start();
    // u7 is linked to a7 by i1 (03-01), which sets the email early@ and the name Seven. i2, sent as a7
    // alone on 03-05, sets email late@ on the anonymousId: the latest email of u7 is late@. i3, older
    // (02-20) but arriving last, sets name Old on u7 and loses to i1's Seven.
    await sendBatch(t, [
      {
        type: "identify",
        userId: "u7",
        anonymousId: "a7",
        traits: { email: "early@seven.test", name: "Seven" },
        timestamp: at("2026-03-01"),
        messageId: "i1",
      },
      { type: "group", userId: "u7", groupId: "co7", timestamp: at("2026-03-02"), messageId: "g1" },
      {
        type: "identify",
        anonymousId: "a7",
        traits: { email: "late@seven.test" },
        timestamp: at("2026-03-05"),
        messageId: "i2",
      },
      { type: "identify", userId: "u7", traits: { name: "Old" }, timestamp: at("2026-02-20"), messageId: "i3" },
    ]);
    const profile = await user(t, "u7");
    expect([profile.email, profile.name]).toEqual(["late@seven.test", "Seven"]);
    const co = await company(t, "co7");
    expect(co.members.map((m) => [m.userId, m.email, m.name])).toEqual([["u7", "late@seven.test", "Seven"]]);
  });
});
