// Times from outside (API bodies and queries, config files, the command line): the parsers live in the API
// contract (@labtrace/protocols/api), shared with the dashboard.
export {
  EARLIEST_TIME,
  LATEST_TIME,
  TIME_RANGE,
  isLabTime,
  timeMs,
  timeMsQuery,
  parseCalendarDate,
  parseInstant,
  calendarDate,
  isoInstant,
  configTime,
  isoOrUndefined,
} from '@labtrace/protocols/api';
