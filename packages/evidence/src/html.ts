// index.html: one self-contained page (inline CSS, no scripts, no external
// assets): a cover, one section per criterion with figures, a sample of each
// evidence table and links to the CSVs, and the integrity section.
import { cellText, type Cell } from "./csv.js";
import type { Table, TableId } from "./collect.js";
import { CRITERIA, viewRows } from "./criteria.js";
import type { IntegritySummary } from "./integrity.js";

export const NO_EVIDENCE = "no evidence in this period";
const SAMPLE_ROWS = 25;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export interface Cover {
  period: { from: string; to: string };
  deployment: string;
  generatedAt: string;
  toolVersion: string;
  store: string;
  keyId: string;
  keySource: string;
  eventTypes: Record<string, number>;
}

export interface CriterionResult {
  id: string;
  empty: boolean;
  rows: number;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 6px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.cover{border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;background:#f6f8fa}
.cover dl,.figures{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}
dt{font-weight:600}dd{margin:0}
.pass{color:#116329;font-weight:700}.fail{color:#b42318;font-weight:700}
.empty{color:#6e7781;font-style:italic}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:12.5px}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top;word-break:break-word}
th{background:#eef1f4}
.muted{color:#57606a}
nav a{margin-right:10px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
`;

function tableHtml(t: Table, rows: Table["rows"], label?: string): string {
  const shown = rows.slice(0, SAMPLE_ROWS);
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
  const body = shown.map((r) => `<tr>${t.columns.map((c) => `<td>${escapeHtml(cellText(r[c] as Cell))}</td>`).join("")}</tr>`).join("\n");
  const count = rows.length === t.rows.length ? `${rows.length} rows` : `${rows.length} of its ${t.rows.length} rows`;
  return `<h3>${escapeHtml(t.title)}${label ? ` — ${escapeHtml(label)}` : ""}</h3>
<p class="muted">Full table: <a href="${escapeHtml(t.file)}">${escapeHtml(t.file)}</a> (${count}${rows.length > SAMPLE_ROWS ? `; the first ${SAMPLE_ROWS} are shown` : ""}).</p>
${rows.length ? `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>` : `<p class="empty">${NO_EVIDENCE}</p>`}`;
}

function figures(pairs: Array<[string, string | number]>): string {
  return `<dl class="figures">${pairs.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(String(v))}</dd>`).join("")}</dl>`;
}

/** Summary figures of one criterion, from its tables. */
function criterionFigures(id: string, tables: Map<TableId, Table>): Array<[string, string | number]> {
  const t = (x: TableId) => tables.get(x)?.rows ?? [];
  const sum = (x: TableId, col: string) => t(x).reduce((n, r) => n + Number(r[col] ?? 0), 0);
  const distinct = (x: TableId, col: string) => new Set(t(x).map((r) => cellText(r[col] as Cell))).size;
  const masked = (src: string) => t("masking_events").filter((r) => r.source === src);
  switch (id) {
    case "CC6.1":
      return [["identities", t("identities").length], ["sessions", t("sessions").length], ["commands decided", sum("identities", "commands_allowed") + sum("identities", "commands_denied") + sum("identities", "commands_held")], ["authentication failures", t("auth_failures").length]];
    case "CC6.2":
      return [["identities that used access", t("identities").length], ["by kind", kinds(t("identities"))], ["issuers", [...new Set(t("identities").flatMap((r) => (r.issuers as string[]) ?? []))].join(", ") || "none"]];
    case "CC6.3":
      return [["commands allowed", sum("identities", "commands_allowed")], ["commands denied", sum("identities", "commands_denied")], ["commands held for approval", sum("identities", "commands_held")], ["groups seen", new Set(t("identities").flatMap((r) => (r.groups as string[]) ?? [])).size]];
    case "CC6.6":
      return [["authentication failures", t("auth_failures").length], ["distinct client addresses failing", distinct("auth_failures", "client_address")], ["failed checks", countsBy(t("auth_failures"), "check")], ["sessions over TLS", `${t("sessions").filter((r) => r.tls === "yes").length} of ${t("sessions").length}`]];
    case "CC6.8":
      return [["denied commands", t("denied_attempts").length], ["by policy", countsBy(t("denied_attempts"), "policy_ids")], ["identities denied", distinct("denied_attempts", "subject")]];
    case "CC7.2":
      return [["denied commands", t("denied_attempts").length], ["authentication failures", t("auth_failures").length], ["sessions", t("sessions").length]];
    case "CC7.3":
      return [["privileged operations", t("privileged_operations").length], ["by outcome", countsBy(t("privileged_operations"), "outcome")], ["median approval latency (ms)", median(t("privileged_operations").map((r) => r.latency_ms).filter((v): v is number => typeof v === "number"))]];
    case "CC8.1":
      return [["policy loads in the period", t("policy_loads").length], ["rejected loads", t("policy_loads").filter((r) => r.accepted === "no").length], ["policy versions in force", new Set(t("policy_versions").map((r) => r.version)).size], ["decisions under a version with no load record", t("policy_versions_used").filter((r) => String(r.loaded).startsWith("NO")).reduce((n, r) => n + Number(r.decisions), 0)]];
    case "C1.1":
      return [["masking events on results", masked("result").length], ["values masked in results", masked("result").reduce((n, r) => n + Number(r.count), 0)], ["entities", countsBy(masked("result"), "entity")]];
    case "C1.2":
      return [["masking events on audit text", masked("audit").length], ["values masked before storage", masked("audit").reduce((n, r) => n + Number(r.count), 0)], ["entities", countsBy(masked("audit"), "entity")]];
    default:
      return [];
  }
}

function kinds(rows: Table["rows"]): string {
  return countsBy(rows, "kind");
}

function countsBy(rows: Table["rows"], col: string): string {
  const m = new Map<string, number>();
  for (const r of rows) {
    const k = cellText(r[col] as Cell) || "(none)";
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, n]) => `${k}: ${n}`).join(", ") || "none";
}

function median(xs: number[]): string {
  if (xs.length === 0) return "n/a";
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return String(Math.round(m));
}

export function renderHtml(cover: Cover, tables: Map<TableId, Table>, integrity: IntegritySummary, results: CriterionResult[]): string {
  const sections = CRITERIA.map((c) => {
    const res = results.find((r) => r.id === c.id)!;
    const anchor = c.id.replace(".", "-");
    const body = res.empty
      ? `<p class="empty">${NO_EVIDENCE}</p>`
      : figures(criterionFigures(c.id, tables)) + c.evidence.map((v) => tableHtml(tables.get(v.table)!, viewRows(v, tables), v.note)).join("\n");
    return `<section id="${anchor}" data-criterion="${escapeHtml(c.id)}" data-evidence-rows="${res.rows}">
<h2>${escapeHtml(c.id)} ${escapeHtml(c.title)}</h2>
<p><strong>What it asks.</strong> ${escapeHtml(c.asks)}</p>
<p><strong>How Gatehouse supports it.</strong> ${escapeHtml(c.supports)} See also <a href="#integrity">Integrity of the audit trail</a>.</p>
${body}
</section>`;
  }).join("\n");
  const types = Object.entries(cover.eventTypes).map(([k, n]) => `${k}: ${n}`).join(", ") || "none";
  const files = [...tables.values()].map((t) => `<li><a href="${escapeHtml(t.file)}">${escapeHtml(t.file)}</a> — ${escapeHtml(t.title)} (${t.rows.length} rows)</li>`).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse SOC 2 evidence pack ${escapeHtml(cover.period.from)} to ${escapeHtml(cover.period.to)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header class="cover" id="cover">
<h1>Gatehouse SOC 2 evidence pack</h1>
<p class="muted">Evidence from the Gatehouse audit trail for the trust services criteria the gateway supports.</p>
<dl>
<dt>Period</dt><dd>${escapeHtml(cover.period.from)} to ${escapeHtml(cover.period.to)} (UTC; the end is exclusive)</dd>
<dt>Deployment</dt><dd>${escapeHtml(cover.deployment)} (audit store: ${escapeHtml(cover.store)})</dd>
<dt>Generated</dt><dd>${escapeHtml(cover.generatedAt)} by gatehouse ${escapeHtml(cover.toolVersion)}</dd>
<dt>Integrity</dt><dd id="integrity-result" class="${integrity.ok ? "pass" : "fail"}">${escapeHtml(integrity.headline)}</dd>
<dt>Events in the period</dt><dd>${escapeHtml(types)}</dd>
<dt>Pack signature</dt><dd>manifest.json lists every file with its SHA-256 and is signed with Ed25519 key <code>${escapeHtml(cover.keyId)}</code> (${escapeHtml(cover.keySource)}); check it with <code>gatehouse evidence verify DIR --public-key KEY</code>.</dd>
</dl>
<nav>${CRITERIA.map((c) => `<a href="#${c.id.replace(".", "-")}">${escapeHtml(c.id)}</a>`).join("")}<a href="#integrity">Integrity</a><a href="#files">Files</a></nav>
</header>
${sections}
<section id="integrity">
<h2>Integrity of the audit trail</h2>
<p>The same checks as <code>gatehouse audit verify</code>: checkpoint signatures, continuity between checkpoints, the ClickHouse copy of each checkpoint against the signed copy in JetStream, the hash chain and every stored column against each event's own bytes, each checkpoint's Merkle root, rows outside the chain, and the events after the last checkpoint against the JetStream audit stream.</p>
<p class="${integrity.ok ? "pass" : "fail"}">${escapeHtml(integrity.headline)}</p>
${tableHtml(integrity.table, integrity.table.rows)}
${tableHtml(integrity.checkpoints, integrity.checkpoints.rows)}
</section>
<section id="files">
<h2>Files</h2>
<ul>
${files}
<li><a href="manifest.json">manifest.json</a> — SHA-256 and size of every file, signed</li>
</ul>
</section>
</main>
</body>
</html>
`;
}
