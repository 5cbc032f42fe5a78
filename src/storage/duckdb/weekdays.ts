/**
 * The columns of event_weeks that count a week's track events per day of the week: d0 for Monday to
 * d6 for Sunday, local days as the reports number them.
 */
export const WEEKDAY_COLUMNS = [0, 1, 2, 3, 4, 5, 6].map((k) => `d${k}`);
