/** Days since 1970-01-01 of an instant (ms), in some time zone. */
export type DayFn = (ms: number) => number;

const DAY_MS = 86_400_000;
/** Zone offsets change on whole quarter-hours at most, so one offset lookup serves a 15-minute slot. */
const SLOT_MS = 15 * 60_000;

export const utcDay: DayFn = (ms) => Math.floor(ms / DAY_MS);

/** Whether `zone` is an IANA time zone name this runtime knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at an instant, in ms. */
export function zoneOffset(zone: string, ms: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  }).formatToParts(ms);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return local - Math.floor(ms / 1000) * 1000;
}

/** A DayFn for an IANA zone, caching the offset of each 15-minute slot. */
export function dayIn(zone: string): DayFn {
  if (zone === "UTC" || zone === "Etc/UTC") return utcDay;
  const offsets = new Map<number, number>();
  return (ms) => {
    const slot = Math.floor(ms / SLOT_MS);
    let offset = offsets.get(slot);
    if (offset === undefined) {
      offset = zoneOffset(zone, slot * SLOT_MS);
      if (offsets.size > 100_000) offsets.clear();
      offsets.set(slot, offset);
    }
    return Math.floor((ms + offset) / DAY_MS);
  };
}
