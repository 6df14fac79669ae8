// RFC 4180 CSV: CRLF line ends, a header row, fields quoted when they hold a
// comma, a double quote, CR or LF (quotes doubled). UTF-8, no BOM.

export type Cell = string | number | boolean | null | undefined | readonly string[];

/** Lists are joined with "; " (ids, groups and policy names never contain it). */
export function cellText(v: Cell): string {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.join("; ");
  return String(v);
}

// Agents control much of what the trail holds (query text, user names). A text cell
// that a spreadsheet would run as a formula gets a leading apostrophe, the usual
// guard against CSV injection, so an auditor opening the pack cannot be attacked
// through it. Numbers are written as they are; the store keeps the exact text.
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(v: Cell): string {
  let s = cellText(v);
  if (typeof v === "string" || Array.isArray(v)) {
    if (FORMULA_START.test(s)) s = `'${s}`;
  }
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(columns: readonly string[], rows: ReadonlyArray<Record<string, Cell>>): string {
  const lines = [columns.map(csvField).join(",")];
  for (const r of rows) lines.push(columns.map((c) => csvField(r[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}

/** Parse RFC 4180 text (used by tests and `evidence verify` consumers). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += ch;
    i++;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
