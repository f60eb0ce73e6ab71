/**
 * Evaluates EventBridge Scheduler expressions (`cron(...)`, `rate(...)`) against a time in an
 * IANA zone. Used by the in-process scheduler of `npm start`, so local runs fire when AWS would.
 */
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

export interface WallClock {
  year: number;
  month: number; // 1-12
  day: number; // 1-31
  hour: number;
  minute: number;
  /** 0 = Sunday */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock reading of `at` in `timeZone` (throws RangeError for an unknown zone). */
export function wallClock(at: Date, timeZone: string): WallClock {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    weekday: DAY_NAMES.indexOf(String(parts.weekday).toUpperCase().slice(0, 3)),
  };
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

function parseField(
  field: string,
  min: number,
  max: number,
  names: string[] = [],
  nameBase = 0,
): Set<number> | '*' {
  if (field === '*' || field === '?') return '*';
  const out = new Set<number>();
  const value = (s: string) => {
    const i = names.indexOf(s.toUpperCase());
    const n = i >= 0 ? i + nameBase : Number(s);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`"${s}" is out of range ${min}-${max}`);
    return n;
  };
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText ? Number(stepText) : 1;
    if (!Number.isInteger(step) || step < 1) throw new Error(`bad step in "${part}"`);
    let lo: number;
    let hi: number;
    if (range === '*' || range === undefined) {
      lo = min;
      hi = max;
    } else if (range.includes('-')) {
      const [a, b] = range.split('-');
      lo = value(a ?? '');
      hi = value(b ?? '');
    } else {
      lo = value(range);
      hi = stepText ? max : lo;
    }
    for (let n = lo; n <= hi; n += step) out.add(n);
  }
  return out;
}

const has = (set: Set<number> | '*', n: number) => set === '*' || set.has(n);

export interface ParsedExpression {
  matches(at: Date, timeZone: string): boolean;
}

/** Parses a Scheduler expression; throws an Error naming the bad part. */
export function parseExpression(expression: string): ParsedExpression {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) {
    const minutes =
      Number(rate[1]) * (rate[2]?.startsWith('hour') ? 60 : rate[2]?.startsWith('day') ? 1440 : 1);
    // Rate schedules count from creation in AWS; locally from the epoch, which is close enough.
    return { matches: (at) => Math.floor(at.getTime() / 60_000) % minutes === 0 };
  }
  const cron = /^cron\((.+)\)$/.exec(expression);
  if (!cron?.[1]) throw new Error(`"${expression}" is neither cron(...) nor rate(...)`);
  const fields = cron[1].trim().split(/\s+/);
  if (fields.length !== 6)
    throw new Error('cron(...) needs six fields: minutes hours day-of-month month day-of-week year');
  const [mi, ho, dom, mo, dow, yr] = fields as [string, string, string, string, string, string];
  const minutes = parseField(mi, 0, 59);
  const hours = parseField(ho, 0, 23);
  const days = parseField(dom, 1, 31);
  const months = parseField(mo, 1, 12, MONTH_NAMES, 1);
  // AWS numbers weekdays 1-7 from Sunday.
  const weekdays = parseField(dow, 1, 7, DAY_NAMES, 1);
  const years = parseField(yr, 1970, 2199);
  return {
    matches(at, timeZone) {
      const w = wallClock(at, timeZone);
      return (
        has(minutes, w.minute) &&
        has(hours, w.hour) &&
        has(days, w.day) &&
        has(months, w.month) &&
        has(weekdays, w.weekday + 1) &&
        has(years, w.year)
      );
    },
  };
}
