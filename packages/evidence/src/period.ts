// The reporting period: UTC days (--from 2026-11-01 --to 2026-11-08, the end
// exclusive) or ISO date-times. A date-time without a zone is UTC.

export interface Period {
  /** Inclusive start. */
  from: Date;
  /** Exclusive end. */
  to: Date;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** One --from/--to value as an instant; throws a message naming the option and the accepted forms. */
export function parseInstant(value: string, option: string): Date {
  const v = value.trim();
  const bad = (why: string) => new Error(`${option} "${value}" ${why}; use a UTC day such as 2026-11-01 or an ISO date-time such as 2026-11-01T08:30:00Z`);
  let y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0, zoneMin = 0;
  const day = DAY.exec(v);
  const dt = day ? null : DATE_TIME.exec(v);
  if (day) {
    [y, mo, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
  } else if (dt) {
    [y, mo, d, h, mi] = [Number(dt[1]), Number(dt[2]), Number(dt[3]), Number(dt[4]), Number(dt[5])];
    s = dt[6] ? Number(dt[6]) : 0;
    ms = dt[7] ? Math.floor(Number(dt[7]) * 1000) : 0;
    const z = dt[8];
    if (z && z.toUpperCase() !== "Z") {
      const m = /^([+-])(\d{2}):?(\d{2})$/.exec(z)!;
      zoneMin = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
      if (Number(m[2]) > 14 || Number(m[3]) > 59) throw bad(`has an impossible time-zone offset ${z}`);
    }
  } else {
    throw bad("is not a date");
  }
  if (mo < 1 || mo > 12) throw bad(`has month ${mo}`);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d < 1 || d > daysInMonth) throw bad(`has day ${d}, but ${y}-${String(mo).padStart(2, "0")} has ${daysInMonth} days`);
  if (h > 23 || mi > 59 || s > 59) throw bad("has an impossible time of day");
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms) - zoneMin * 60_000);
}

export function parsePeriod(from: string | undefined, to: string | undefined): Period {
  if (!from) throw new Error("--from is required (the first UTC day of the period, e.g. --from 2026-11-01)");
  if (!to) throw new Error("--to is required (the day after the period, exclusive, e.g. --to 2026-11-08 for the week of 1-7 November)");
  const p = { from: parseInstant(from, "--from"), to: parseInstant(to, "--to") };
  if (p.to.getTime() <= p.from.getTime()) {
    throw new Error(`--to (${iso(p.to)}) must be after --from (${iso(p.from)}); --to is exclusive, so one day is --from 2026-11-01 --to 2026-11-02`);
  }
  return p;
}

/** 2026-11-01T00:00:00Z (milliseconds only when present). */
export function iso(d: Date): string {
  return d.toISOString().replace(".000Z", "Z");
}

/** "YYYY-MM-DD hh:mm:ss.ffffff" for a query parameter read by parseDateTime64BestEffort. */
export function chTime(d: Date): string {
  return d.toISOString().replace("T", " ").replace("Z", "000");
}
