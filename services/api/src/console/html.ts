// HTML building blocks of the console pages. Everything that comes from the
// audit store or the request goes through esc(); pages are rendered on the server,
// so the browser runs no script except the asciinema player and the approvals UI.

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export const esc = (v: unknown): string => String(v ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** JSON for a <script type="application/json"> block: no "</script>" can end it early. */
export const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");

export interface NavState {
  subject: string;
  approver: boolean;
  auditor: boolean;
  active: "approvals" | "sessions" | "dashboards";
}

export const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;max-width:78rem;margin:1rem auto;padding:0 1rem;color:#1d2330}
header{display:flex;gap:1.5rem;align-items:baseline;border-bottom:1px solid #ddd;margin-bottom:1rem;flex-wrap:wrap}
header h1{font-size:1.25rem;margin:.4rem 0}header nav a{margin-right:1rem;text-decoration:none;color:#2456a6}
header nav a.active{font-weight:700;color:#1d2330;border-bottom:2px solid #2456a6}header .me{margin-left:auto;color:#555}
a{color:#2456a6}pre{background:#f3f4f7;padding:.6rem;overflow:auto;border-radius:6px;white-space:pre-wrap}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}td,th{border-bottom:1px solid #eee;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f7f8fa;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.92em}.muted{color:#666}.err{color:#b3261e}.ok{color:#137333}
.allow{color:#137333}.deny,.denied,.expired,.withdrawn{color:#b3261e;font-weight:600}.require_approval,.pending{color:#a36b00;font-weight:600}.approved,.granted{color:#137333;font-weight:600}
form.filters{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:end;background:#f7f8fa;padding:.6rem;border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:.85rem}form.filters label.cb{flex-direction:row;gap:.3rem;align-items:center}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(34rem,1fr));gap:1rem}
.panel{border:1px solid #e3e5ea;border-radius:8px;padding:.6rem .8rem}.panel h3{margin:.1rem 0 .4rem;font-size:1rem}
.tl-cmd{border-left:3px solid #cfd5e0;padding:.2rem .6rem;margin:.5rem 0}.tl-cmd.e-deny{border-color:#b3261e}.tl-cmd.e-require_approval{border-color:#a36b00}
.tl-cmd .meta{font-size:.85rem;color:#444}.tl-cmd pre{margin:.2rem 0}.tl-sub{font-size:.85rem;margin:.1rem 0 .1rem 1rem}
.transcript .q{background:#eef3fb;border-left:3px solid #2456a6}.transcript .q.deny{border-color:#b3261e;background:#fbeeee}
.transcript .line{margin:.15rem 0;padding:.15rem .4rem;font-family:ui-monospace,monospace;font-size:.85rem;white-space:pre-wrap}
.transcript .t{color:#888;margin-right:.5rem}
svg text{font:11px system-ui,sans-serif;fill:#333}
svg.chart{max-width:100%;height:auto}
.legend span{display:inline-block;margin-right:.8rem;font-size:.8rem}.legend i{display:inline-block;width:.7rem;height:.7rem;margin-right:.25rem;vertical-align:-1px}
`;

export function layout(title: string, nav: NavState | undefined, body: string, head = ""): string {
  const link = (href: string, label: string, key: NavState["active"]) => `<a href="${href}"${nav?.active === key ? ' class="active"' : ""}>${label}</a>`;
  const links = nav
    ? [nav.approver ? link("/console", "Approvals", "approvals") : "", nav.auditor ? link("/console/sessions", "Sessions", "sessions") : "", nav.auditor ? link("/console/dashboards", "Dashboards", "dashboards") : ""].join("")
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)} - Gatehouse</title>
<style>${STYLE}</style>${head}</head>
<body>
<header><h1>Gatehouse</h1><nav id="nav">${links}</nav>${nav ? `<span class="me" id="me">${esc(nav.subject)}</span>` : ""}</header>
<main id="main">
${body}
</main>
</body></html>`;
}

export function table(headers: Array<string | { label: string; num?: boolean }>, rows: string[][], attrs = ""): string {
  const th = headers.map((h) => (typeof h === "string" ? `<th>${esc(h)}</th>` : `<th${h.num ? ' class="n"' : ""}>${esc(h.label)}</th>`)).join("");
  return `<table ${attrs}><thead><tr>${th}</tr></thead><tbody>${rows.map((r) => `<tr>${r.join("")}</tr>`).join("")}</tbody></table>`;
}

export const td = (v: unknown, cls = ""): string => `<td${cls ? ` class="${cls}"` : ""}>${esc(v)}</td>`;
export const tdHtml = (html: string, cls = ""): string => `<td${cls ? ` class="${cls}"` : ""}>${html}</td>`;
export const num = (v: unknown): string => td(Number(v ?? 0).toLocaleString("en-US"), "n");

/** "2026-11-22 05:09:24.188033" -> "2026-11-22 05:09:24" (the store's UTC DateTime64 text). */
export const shortTime = (v: unknown): string => {
  const s = String(v ?? "");
  return s.startsWith("1970-01-01") ? "" : s.slice(0, 19);
};
