// Recordings as the console shows them (formats: docs/recordings.md). An SQL
// transcript is rendered here as HTML, line by line, as the client saw it; an
// asciicast goes to the asciinema player in the browser unchanged.
import { esc } from "./html.js";

/** Most transcript lines rendered on one page (the rest is counted, not shown). */
export const MAX_TRANSCRIPT_LINES = 5000;

export interface TranscriptView {
  html: string;
  header: Record<string, unknown> | undefined;
  lines: number;
  shown: number;
  statements: number;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const obj = (v: Json | undefined): Record<string, Json> => (v && typeof v === "object" && !Array.isArray(v) ? v : {});
const str = (v: Json | undefined): string => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));

function cell(v: Json): string {
  return v === null ? '<span class="muted">NULL</span>' : esc(str(v));
}

/** Render a gatehouse-sql transcript (the concatenated JSON lines). */
export function renderTranscript(text: string): TranscriptView {
  const out: string[] = [];
  let header: Record<string, unknown> | undefined;
  let lines = 0;
  let shown = 0;
  let statements = 0;
  let open = false; // inside a result table
  const closeTable = () => {
    if (open) out.push("</tbody></table>");
    open = false;
  };
  for (const raw of text.split("\n")) {
    if (raw.trim() === "") continue;
    lines++;
    if (shown >= MAX_TRANSCRIPT_LINES) continue;
    let parsed: Json;
    try {
      parsed = JSON.parse(raw) as Json;
    } catch {
      closeTable();
      out.push(`<div class="line err">unreadable line ${lines}: ${esc(raw.slice(0, 200))}</div>`);
      shown++;
      continue;
    }
    if (!Array.isArray(parsed)) {
      if (!header) header = obj(parsed);
      continue;
    }
    shown++;
    const [t, code, data] = parsed as [Json, Json, Json];
    const time = `<span class="t">${esc(typeof t === "number" ? t.toFixed(3) : str(t))}s</span>`;
    const d = obj(data);
    switch (code) {
      case "q": {
        closeTable();
        statements++;
        const decision = str(d.decision);
        const params = Array.isArray(d.params) && d.params.length ? ` <span class="muted">params: ${(d.params as Json[]).map(cell).join(", ")}</span>` : "";
        const pol = Array.isArray(d.policy_ids) && d.policy_ids.length ? ` <span class="muted">(${esc((d.policy_ids as Json[]).map(str).join(", "))})</span>` : "";
        out.push(`<div class="line q ${esc(decision)}" data-code="q">${time}<b>${esc(str(d.text))}</b>${params} <span class="${esc(decision)}">${esc(decision)}</span>${pol}</div>`);
        break;
      }
      case "cols": {
        closeTable();
        const cols = Array.isArray(d.columns) ? (d.columns as Json[]).map((c) => str(obj(c).name)) : [];
        out.push(`<table class="result" data-code="cols"><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>`);
        open = true;
        break;
      }
      case "rows": {
        const rows = Array.isArray(data) ? (data as Json[]) : [];
        if (!open) {
          out.push('<table class="result"><tbody>');
          open = true;
        }
        for (const r of rows) out.push(`<tr>${(Array.isArray(r) ? r : [r]).map((v) => `<td>${cell(v)}</td>`).join("")}</tr>`);
        break;
      }
      case "done":
        closeTable();
        out.push(`<div class="line done" data-code="done">${time}${esc(str(d.tag))}</div>`);
        break;
      case "error":
        closeTable();
        out.push(`<div class="line err" data-code="error">${time}${esc(str(d.severity) || "ERROR")} ${esc(str(d.code))}: ${esc(str(d.message))}</div>`);
        break;
      case "notice":
        closeTable();
        out.push(`<div class="line notice" data-code="notice">${time}NOTICE ${esc(str(d.code))}: ${esc(str(d.message))}</div>`);
        break;
      case "copy":
        closeTable();
        out.push(`<div class="line" data-code="copy">${time}COPY ${esc(str(d.direction))}: <pre>${esc(str(d.data))}</pre></div>`);
        break;
      case "rows_omitted":
        closeTable();
        out.push(`<div class="line muted" data-code="rows_omitted">${time}${esc(String(d.count))} more ${d.unit === "copy_data" ? "COPY data message(s)" : "row(s)"} (${esc(String(d.bytes))} bytes) not recorded: recordings.maxRowsPerResult = ${esc(String(d.limit))}</div>`);
        break;
      case "truncated":
        closeTable();
        out.push(`<div class="line err" data-code="truncated">${time}recording truncated: ${esc(str(d.reason))}</div>`);
        break;
      case "end":
        closeTable();
        out.push(`<div class="line muted" data-code="end">${time}session ended (${esc(str(d.reason))})</div>`);
        break;
      default:
        closeTable();
        out.push(`<div class="line muted">${time}${esc(str(code))} ${esc(str(data))}</div>`);
    }
  }
  closeTable();
  if (lines > shown + (header ? 1 : 0)) out.push(`<p class="muted">Showing the first ${shown} of ${lines} lines.</p>`);
  return { html: `<div class="transcript" id="transcript">${out.join("\n")}</div>`, header, lines, shown, statements };
}
