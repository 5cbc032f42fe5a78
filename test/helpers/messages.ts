/**
 * Tracking API messages for hand-worked fixtures. Each test file keeps its own short notation for
 * times and senders, and builds on these.
 */

/** Who sent a message: a user, a visitor (anonymousId), or both at once, which links the two. */
export type Who = { userId?: string; anonymousId?: string };

export const user = (userId: string): Who => ({ userId });
export const visitor = (anonymousId: string): Who => ({ anonymousId });
/** A fixture's short name for a sender: names that start with "v" are visitors, the others users. */
export const sender = (name: string): Who => (name.startsWith("v") ? visitor(name) : user(name));
/** context.groupId, which attributes an event to that company alone; nothing without a company. */
export const companyContext = (groupId?: string) => (groupId === undefined ? {} : { context: { groupId } });

export type MessageType = "track" | "page" | "identify" | "group";

/** Names the n-th numbered message of a file (n from 1), of the given type. */
export type MessageIds = (type: MessageType, n: number) => string;

const LETTERS: Record<MessageType, string> = { track: "m", page: "p", identify: "i", group: "g" };

/** A letter for the type, then the number: m1 (track), p2 (page), i3 (identify), g4 (group). */
export const idsByType: MessageIds = (type, n) => `${LETTERS[type]}${n}`;

/** The same prefix for every type, then the number. */
export const idsWithPrefix =
  (prefix: string): MessageIds =>
  (_type, n) =>
    `${prefix}${n}`;

/**
 * Builders of track, page, identify and group calls for one test file. Each message takes the next
 * number of one counter, named by `ids`, as its messageId, unless `fields` holds a messageId of its
 * own (which takes no number). `fields` adds the rest: context, traits, properties.
 */
export function messageBuilders(ids: MessageIds = idsByType) {
  let n = 0;
  const message = (type: MessageType, who: Who, head: object, timestamp: string, fields: object) => {
    const given = (fields as { messageId?: unknown }).messageId;
    const messageId = typeof given === "string" ? given : ids(type, ++n);
    return { type, ...who, ...head, timestamp, messageId, ...fields };
  };
  return {
    track: (who: Who, event: string, timestamp: string, fields: object = {}) =>
      message("track", who, { event }, timestamp, fields),
    page: (who: Who, name: string, timestamp: string, fields: object = {}) =>
      message("page", who, { name }, timestamp, fields),
    identify: (who: Who, timestamp: string, fields: object = {}) => message("identify", who, {}, timestamp, fields),
    group: (who: Who, groupId: string, timestamp: string, fields: object = {}) =>
      message("group", who, { groupId }, timestamp, fields),
  };
}

/**
 * Builders in a shorter notation, for fixtures whose track calls mostly carry one event name: the
 * sender, the instant, then extra fields such as a context, and last another event name (or page
 * name, "Home" by default) where it differs. Identify and group calls always carry traits, {} when
 * none are given.
 */
export function sameEventBuilders(event: string, ids: MessageIds) {
  const messages = messageBuilders(ids);
  return {
    track: (who: Who, timestamp: string, extra: object = {}, name = event) =>
      messages.track(who, name, timestamp, extra),
    page: (who: Who, timestamp: string, extra: object = {}, name = "Home") =>
      messages.page(who, name, timestamp, extra),
    identify: (who: Who, timestamp: string, traits: object = {}) => messages.identify(who, timestamp, { traits }),
    group: (who: Who, groupId: string, timestamp: string, traits: object = {}) =>
      messages.group(who, groupId, timestamp, { traits }),
  };
}
