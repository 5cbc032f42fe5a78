/** Visitors' entity ids carry this prefix inside reports, so that no userId can equal one. */
export const VISITOR_PREFIX = "\u0001";
