// The auditors' console (group `auditors`, read-only): sessions with filters, a
// session's timeline, its recording (SQL transcript, or the asciinema player for
// terminal sessions) and dashboards. Pages are rendered on the server from
// ClickHouse queries (console/queries.ts) bound with QueryRequest.params; each
// page view is recorded as one AuditorQuery event before it is sent
// (auditor-audit.ts). Nothing here changes state: GET only.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ApiDeps } from "../deps.js";
import { AuditUnrecorded, StoreQueryError, type StoreResult } from "../auditor-audit.js";
import { bars, bucketStarts, lines, stackedColumns, type Series } from "../console/charts.js";
import { esc, layout, num, scriptJson, shortTime, table, td, tdHtml, type NavState } from "../console/html.js";
import {
  CONNECTIONS_SQL,
  DASHBOARDS,
  PAGE_SIZE,
  dashboardQueries,
  dedupeEvents,
  recordingQuery,
  sessionQueries,
  sessionRowsQuery,
  sessionsQuery,
  type ConsoleQuery,
  type DashboardName,
  type SessionFilters,
  type TimeRange,
} from "../console/queries.js";
import { renderTranscript } from "../console/recording.js";
import { consoleUser, forbiddenPage, type ConsoleUser } from "../console/user.js";

/** Most recording chunks loaded for one view (256 KiB each: 64 MiB, the default recording limit). */
const MAX_RECORDING_CHUNKS = 256;

const RANGES: Record<string, number> = { "1h": 1, "24h": 24, "7d": 7 * 24, "30d": 30 * 24, "90d": 90 * 24 };
const FAR_PAST = "1970-01-01 00:00:00";
const FAR_FUTURE = "2100-01-01 00:00:00";

class BadRequest extends Error {}

/** "2026-11-22", "2026-11-22T05:09", "2026-11-22 05:09:24" (UTC) -> "YYYY-MM-DD hh:mm:ss". */
export function parseTime(name: string, v: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$/.exec(v.trim());
  if (!m) throw new BadRequest(`${name}: "${v}" is not a time; use YYYY-MM-DD or YYYY-MM-DDThh:mm (UTC)`);
  const [, y, mo, d, h = "00", mi = "00", s = "00"] = m;
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== `${y}-${mo}-${d}` || Number(y) < 1970 || Number(y) > 2099) {
    throw new BadRequest(`${name}: "${v}" is not a valid date between 1970 and 2099`);
  }
  return `${y}-${mo}-${d} ${h}:${mi}:${s}`;
}

const toMs = (t: string) => Date.parse(`${t.replace(" ", "T")}Z`);
const q1 = (v: unknown): string => (typeof v === "string" ? v : Array.isArray(v) && typeof v[0] === "string" ? v[0] : "");
const flag = (v: unknown): boolean => ["1", "on", "true", "yes"].includes(q1(v));

function limited(name: string, v: string, max: number): string {
  if (v.length > max) throw new BadRequest(`${name} is longer than ${max} characters`);
  if (/[\u0000-\u001f]/.test(v)) throw new BadRequest(`${name} contains control characters`);
  return v;
}

export function sessionFilters(q: Record<string, unknown>): SessionFilters {
  const page = q1(q.page) === "" ? 0 : Number(q1(q.page));
  if (!Number.isInteger(page) || page < 0 || page > 100_000) throw new BadRequest(`page must be a whole number from 0, got "${q1(q.page)}"`);
  const from = q1(q.from) ? parseTime("from", q1(q.from)) : FAR_PAST;
  const to = q1(q.to) ? parseTime("to", q1(q.to)) : FAR_FUTURE;
  if (toMs(from) >= toMs(to)) throw new BadRequest(`the time range is empty: from (${from}) must be before to (${to})`);
  return {
    identity: limited("identity", q1(q.identity).trim(), 256),
    connection: limited("connection", q1(q.connection).trim(), 256),
    from,
    to,
    denied: flag(q.denied),
    approved: flag(q.approved),
    masked: flag(q.masked),
    page,
  };
}

/** A dashboard's time range: a preset (`range=7d`) or `from`/`to`; default the last 7 days. */
export function dashboardRange(q: Record<string, unknown>, nowMs = Date.now()): TimeRange & { label: string; bucketHours: number; preset: string } {
  let fromMs: number;
  let toMsV: number;
  let preset = q1(q.range);
  if (q1(q.from) || q1(q.to)) {
    const from = q1(q.from) ? parseTime("from", q1(q.from)) : parseTime("from", new Date(nowMs - 7 * 86_400_000).toISOString().slice(0, 16));
    const to = q1(q.to) ? parseTime("to", q1(q.to)) : parseTime("to", new Date(nowMs + 60_000).toISOString().slice(0, 16));
    fromMs = toMs(from);
    toMsV = toMs(to);
    preset = "";
    if (fromMs >= toMsV) throw new BadRequest(`the time range is empty: from (${from}) must be before to (${to})`);
  } else {
    if (preset === "") preset = "7d";
    const hours = RANGES[preset];
    if (!hours) throw new BadRequest(`range must be one of ${Object.keys(RANGES).join(", ")}, got "${preset}"`);
    // The end is rounded up to the next hour, so the current hour is in the range.
    toMsV = Math.ceil((nowMs + 1) / 3_600_000) * 3_600_000;
    fromMs = toMsV - hours * 3_600_000;
  }
  const fmt = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  const bucketHours = toMsV - fromMs > 7 * 86_400_000 ? 24 : 1;
  return { from: fmt(fromMs), to: fmt(toMsV), label: `${fmt(fromMs)} to ${fmt(toMsV)} UTC`, bucketHours, preset };
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").header("cache-control", "no-store").send(body);
}

function nav(user: ConsoleUser, active: NavState["active"]): NavState {
  return { subject: user.identity.subject, approver: user.approver, auditor: user.auditor, active };
}

function errorPage(reply: FastifyReply, user: ConsoleUser, active: NavState["active"], e: unknown): FastifyReply {
  if (e instanceof BadRequest) return html(reply, 400, layout("Bad request", nav(user, active), `<h2>Bad request</h2><p class="err" id="error">${esc(e.message)}</p><p><a href="javascript:history.back()">Back</a></p>`));
  if (e instanceof AuditUnrecorded) return html(reply, 503, layout("Audit trail unavailable", nav(user, active), `<h2>Audit trail unavailable</h2><p class="err" id="error">${esc(e.message)}</p>`));
  if (e instanceof StoreQueryError) return html(reply, e.status, layout("Audit store error", nav(user, active), `<h2>The audit store could not answer</h2><p class="err" id="error">${esc(e.message)}</p>`));
  throw e;
}

const sessionLink = (id: unknown) => `<a href="/console/sessions/${encodeURIComponent(String(id))}">${esc(id)}</a>`;

export function auditorConsoleRoutes(app: FastifyInstance, deps: ApiDeps): void {
  /** Sign-in and role check; null when a redirect or 403 page was sent. */
  const auditor = async (req: FastifyRequest, reply: FastifyReply): Promise<ConsoleUser | null> => {
    const user = await consoleUser(deps, req, reply);
    if (!user) return null;
    if (!user.auditor) {
      forbiddenPage(deps, reply, user, "auditor");
      return null;
    }
    return user;
  };
  const run = (user: ConsoleUser, kind: string, params: Record<string, string>, queries: ConsoleQuery[]): Promise<StoreResult[]> =>
    deps.auditor.run({ identity: user.identity, via: "console", kind, params }, queries);

  // ---- Sessions list
  app.get<{ Querystring: Record<string, unknown> }>("/console/sessions", async (req, reply) => {
    const user = await auditor(req, reply);
    if (!user) return reply;
    try {
      const f = sessionFilters(req.query);
      const q = sessionsQuery(f);
      const { rows, more, connections } = await deps.auditor.runSteps({ identity: user.identity, via: "console", kind: "sessions", params: filterParams(f) }, async (exec) => {
        const [page, conns] = await exec([q, { kind: "sessions", sql: CONNECTIONS_SQL, params: {}, maxRows: 1000 }]);
        const ids = page!.rows.slice(0, PAGE_SIZE).map((r) => String(r.session_id));
        const [list] = ids.length ? await exec([sessionRowsQuery(ids)]) : [{ rows: [] as Record<string, unknown>[] }];
        return { rows: list!.rows, more: page!.rows.length > PAGE_SIZE, connections: conns!.rows.map((r) => String(r.connection)) };
      });
      const body = `<h2>Sessions</h2>
${filterForm(f, connections)}
${
  rows.length === 0
    ? '<p id="no-sessions">No sessions match these filters.</p>'
    : table(
        ["Session", "Identity", "Connection", "Protocol", "Start (UTC)", "End (UTC)", { label: "Commands", num: true }, { label: "Denied", num: true }, { label: "Approvals", num: true }, { label: "Masked values", num: true }, "Recording"],
        rows.map((r) => [
          tdHtml(sessionLink(r.session_id)),
          td(r.identity_subject, "identity"),
          td(r.connection, "connection"),
          td(r.protocol),
          td(shortTime(r.started_at)),
          td(shortTime(r.ended_at) || "open"),
          num(r.commands),
          td(Number(r.denied).toLocaleString("en-US"), Number(r.denied) > 0 ? "n deny" : "n"),
          num(r.approvals),
          num(r.masked_values),
          r.recorded ? tdHtml(`<a href="/console/sessions/${encodeURIComponent(String(r.session_id))}/recording">yes</a>`) : td("no", "muted"),
        ]),
        'id="sessions"',
      )
}
<p class="pager">${f.page > 0 ? `<a id="prev" href="${pageHref(f, f.page - 1)}">← Newer</a> ` : ""}Page ${f.page + 1}${more ? ` <a id="next" href="${pageHref(f, f.page + 1)}">Older →</a>` : ""}</p>`;
      return html(reply, 200, layout("Sessions", nav(user, "sessions"), body));
    } catch (e) {
      return errorPage(reply, user, "sessions", e);
    }
  });

  // ---- One session: header, timeline, approvals, masking, recording link
  app.get<{ Params: { id: string } }>("/console/sessions/:id", async (req, reply) => {
    const user = await auditor(req, reply);
    if (!user) return reply;
    try {
      const id = limited("session id", req.params.id, 512);
      const [raw, approvals, rec] = await run(user, "session", { session_id: id }, sessionQueries(id));
      const events = { rows: dedupeEvents(raw!.rows) };
      if (events.rows.length === 0) {
        return html(reply, 404, layout("Session not found", nav(user, "sessions"), `<h2>Session not found</h2><p id="error">No audit events for session <code>${esc(id)}</code>. <a href="/console/sessions">Back to sessions</a></p>`));
      }
      return html(reply, 200, layout(`Session ${id}`, nav(user, "sessions"), sessionPage(id, events.rows, approvals!.rows, rec!.rows[0])));
    } catch (e) {
      return errorPage(reply, user, "sessions", e);
    }
  });

  // ---- A session's recording
  app.get<{ Params: { id: string } }>("/console/sessions/:id/recording", async (req, reply) => {
    const user = await auditor(req, reply);
    if (!user) return reply;
    try {
      const id = limited("session id", req.params.id, 512);
      const [chunks] = await run(user, "recording", { session_id: id }, [recordingQuery(id, MAX_RECORDING_CHUNKS)]);
      const back = `<p><a href="/console/sessions/${encodeURIComponent(id)}">← Session ${esc(id)}</a></p>`;
      if (chunks!.rows.length === 0) return html(reply, 404, layout("No recording", nav(user, "sessions"), `${back}<h2>No recording</h2><p id="error">Session <code>${esc(id)}</code> has no recording in gatehouse.recordings.</p>`));
      const kind = String(chunks!.rows[0]!.kind);
      const text = chunks!.rows.map((r) => String(r.data)).join("");
      const complete = chunks!.rows.some((r) => r.last === true || r.last === 1);
      const note = `<p class="muted" id="recording-meta">${esc(kind)} recording, ${chunks!.rows.length} chunk(s), ${text.length.toLocaleString("en-US")} bytes${complete ? ", complete" : ", <b>incomplete</b> (no last chunk stored yet)"}${chunks!.truncated ? `; only the first ${MAX_RECORDING_CHUNKS} chunks are shown` : ""}.</p>`;
      if (kind === "asciicast") {
        const body = `${back}<h2>Terminal recording</h2>${note}
<div id="player"></div>
<script type="application/json" id="cast">${scriptJson(text)}</script>
<script src="/console/assets/asciinema-player.min.js"></script>
<script>
AsciinemaPlayer.create({ data: JSON.parse(document.getElementById("cast").textContent) }, document.getElementById("player"), { autoPlay: true, fit: "width", idleTimeLimit: 2 });
</script>`;
        return html(reply, 200, layout(`Recording ${id}`, nav(user, "sessions"), body, '<link rel="stylesheet" href="/console/assets/asciinema-player.css">'));
      }
      const view = renderTranscript(text);
      const h = view.header ?? {};
      const ident = (h.identity ?? {}) as { subject?: string; groups?: string[] };
      const body = `${back}<h2>SQL transcript</h2>${note}
<p>${esc(ident.subject ?? "")} ${ident.groups?.length ? `(${esc(ident.groups.join(", "))})` : ""} on <b>${esc(h.connection ?? "")}</b> (${esc(h.protocol ?? "")}), ${view.statements} statement(s).</p>
${view.html}`;
      return html(reply, 200, layout(`Recording ${id}`, nav(user, "sessions"), body));
    } catch (e) {
      return errorPage(reply, user, "sessions", e);
    }
  });

  // ---- Dashboards
  app.get("/console/dashboards", async (req, reply) => {
    const user = await auditor(req, reply);
    if (!user) return reply;
    const items = DASHBOARDS.map((d) => `<li><a href="/console/dashboards/${d.name}">${esc(d.title)}</a></li>`).join("");
    return html(reply, 200, layout("Dashboards", nav(user, "dashboards"), `<h2>Dashboards</h2><ul id="dashboards">${items}</ul><p class="muted">The same panels are provisioned in Grafana (deploy/grafana).</p>`));
  });

  app.get<{ Params: { name: string }; Querystring: Record<string, unknown> }>("/console/dashboards/:name", async (req, reply) => {
    const user = await auditor(req, reply);
    if (!user) return reply;
    try {
      const d = DASHBOARDS.find((x) => x.name === req.params.name);
      if (!d) throw new BadRequest(`no dashboard "${req.params.name}"; there are ${DASHBOARDS.map((x) => x.name).join(", ")}`);
      const r = dashboardRange(req.query);
      const queries = dashboardQueries(d.name, r, r.bucketHours);
      const results = await run(user, `dashboard:${d.name}`, { from: r.from, to: r.to, range: r.preset }, queries);
      const byPanel = new Map(queries.map((q, i) => [q.panel, results[i]!.rows]));
      const body = `<h2>${esc(d.title)}</h2>
${dashboardTabs(d.name, r)}
<p class="muted" id="range">${esc(r.label)}, ${r.bucketHours === 1 ? "hourly" : "daily"} buckets</p>
<div class="panels">${renderDashboard(d.name, byPanel, bucketStarts(toMs(r.from), toMs(r.to), r.bucketHours))}</div>`;
      return html(reply, 200, layout(d.title, nav(user, "dashboards"), body));
    } catch (e) {
      return errorPage(reply, user, "dashboards", e);
    }
  });

  // ---- The asciinema player, served from node_modules (no CDN: the console works offline).
  const require = createRequire(import.meta.url);
  let playerDir: string | undefined;
  const asset = (file: string, type: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    try {
      playerDir ??= join(dirname(require.resolve("asciinema-player/dist/bundle/asciinema-player.min.js")));
      return reply.type(type).header("cache-control", "public, max-age=3600").send(readFileSync(join(playerDir, file)));
    } catch (e) {
      deps.log.error({ err: (e as Error).message }, "asciinema-player assets missing");
      return reply.code(500).type("text/plain").send("the asciinema-player package is not installed (npm ci)\n");
    }
  };
  app.get("/console/assets/asciinema-player.min.js", asset("asciinema-player.min.js", "text/javascript; charset=utf-8"));
  app.get("/console/assets/asciinema-player.css", asset("asciinema-player.css", "text/css; charset=utf-8"));
}

// ---------------------------------------------------------------- rendering

function filterParams(f: SessionFilters): Record<string, string> {
  const p: Record<string, string> = { page: String(f.page) };
  if (f.identity) p.identity = f.identity;
  if (f.connection) p.connection = f.connection;
  if (f.from !== FAR_PAST) p.from = f.from;
  if (f.to !== FAR_FUTURE) p.to = f.to;
  if (f.denied) p.denied = "1";
  if (f.approved) p.approved = "1";
  if (f.masked) p.masked = "1";
  return p;
}

function pageHref(f: SessionFilters, page: number): string {
  const p = filterParams({ ...f, page });
  return `/console/sessions?${esc(new URLSearchParams(p).toString())}`;
}

const localInput = (t: string, far: string) => (t === far ? "" : t.slice(0, 16).replace(" ", "T"));

function filterForm(f: SessionFilters, connections: string[]): string {
  const opts = ['<option value="">(any)</option>', ...connections.map((c) => `<option value="${esc(c)}"${c === f.connection ? " selected" : ""}>${esc(c)}</option>`)].join("");
  const cb = (name: "denied" | "approved" | "masked", label: string) => `<label class="cb"><input type="checkbox" name="${name}" value="1"${f[name] ? " checked" : ""}> ${label}</label>`;
  return `<form class="filters" id="filters" method="get" action="/console/sessions">
<label>Identity (contains)<input type="text" name="identity" value="${esc(f.identity)}" maxlength="256"></label>
<label>Connection<select name="connection">${opts}</select></label>
<label>From (UTC)<input type="datetime-local" name="from" value="${esc(localInput(f.from, FAR_PAST))}"></label>
<label>To (UTC)<input type="datetime-local" name="to" value="${esc(localInput(f.to, FAR_FUTURE))}"></label>
${cb("denied", "with a denied command")}${cb("approved", "with an approved command")}${cb("masked", "with masked values")}
<button type="submit" id="apply">Filter</button> <a href="/console/sessions">Clear</a>
</form>`;
}

function details(row: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(String(row.details ?? "{}")) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const arr = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const ms = (us: unknown) => `${(Number(us ?? 0) / 1000).toFixed(1)} ms`;

function sessionPage(id: string, events: Record<string, unknown>[], approvals: Record<string, unknown>[], rec: Record<string, unknown> | undefined): string {
  const start = events.find((e) => e.type === "session_start");
  const end = events.find((e) => e.type === "session_end");
  const first = start ?? events[0]!;
  const sd = start ? details(start) : {};
  const params = (start?.startup_parameters ?? {}) as Record<string, string>;
  const header = table(
    ["", ""],
    [
      [td("Identity"), tdHtml(`<b id="identity">${esc(first.identity_subject)}</b> <span class="muted">name ${esc(first.identity_name)}, ${esc(first.identity_kind)}, issuer ${esc(first.identity_issuer)}</span>`)],
      [td("Groups"), td(arr(first.identity_groups).join(", ") || "none", "groups")],
      [td("Client address"), td(start?.client_address ?? "", "client")],
      [td("Connection"), tdHtml(`<b id="connection">${esc(first.connection)}</b> (${esc(first.protocol)}) via listener ${esc(first.listener_id)}${sd.upstream ? `, upstream ${esc(sd.upstream)}` : ""}`)],
      [td("TLS"), td(start ? (sd.tls ? "yes" : "no") : "unknown", "tls")],
      [td("Authentication"), td(sd.auth_method ?? "")],
      [td("Startup parameters"), tdHtml(Object.keys(params).length ? Object.entries(params).map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(" ") : '<span class="muted">none</span>', "startup")],
      [td("Started (UTC)"), td(shortTime(start?.time ?? first.time))],
      [td("Ended (UTC)"), td(end ? `${shortTime(end.time)} (${end.reason}, ${ms(end.duration_us)})` : "still open or not recorded")],
      [td("Recording"), tdHtml(rec && Number(rec.chunks) > 0 ? `<a id="recording-link" href="/console/sessions/${encodeURIComponent(id)}/recording">${esc(rec.kind)} recording</a> (${esc(rec.chunks)} chunks, ${Number(rec.bytes).toLocaleString("en-US")} bytes${rec.complete ? "" : ", incomplete"}${Number(rec.truncated) ? ", truncated" : ""})` : '<span class="muted">none</span>')],
    ],
    'id="session-header"',
  );

  // Group by command: decision, result and masking rows follow their command.
  const byCommand = new Map<string, { command?: Record<string, unknown>; decision?: Record<string, unknown>; result?: Record<string, unknown>; masking: Record<string, unknown>[]; approvals: Record<string, unknown>[] }>();
  const slot = (cid: string) => {
    let s = byCommand.get(cid);
    if (!s) byCommand.set(cid, (s = { masking: [], approvals: [] }));
    return s;
  };
  const other: Record<string, unknown>[] = [];
  for (const e of events) {
    const cid = String(e.command_id ?? "");
    if (e.type === "command") slot(cid).command = e;
    else if (e.type === "decision") slot(cid).decision = e;
    else if (e.type === "result") slot(cid).result = e;
    else if (e.type === "masking") slot(cid).masking.push(e);
    else other.push(e);
  }
  for (const a of approvals) slot(String(a.command_id ?? "")).approvals.push(a);
  const items: Array<{ time: string; html: string }> = [];
  for (const o of other) {
    if (o.type === "session_start" || o.type === "session_end") items.push({ time: String(o.time), html: `<div class="tl-sub muted" data-type="${esc(o.type)}">${esc(shortTime(o.time))} ${esc(o.type === "session_start" ? "session started" : `session ended: ${o.reason}`)}</div>` });
    else items.push({ time: String(o.time), html: `<div class="tl-sub" data-type="${esc(o.type)}">${esc(shortTime(o.time))} ${esc(o.type)} ${esc(o.error_message || o.reason || "")}</div>` });
  }
  let n = 0;
  for (const [cid, s] of byCommand) {
    const c = s.command ?? s.decision;
    if (!c) continue;
    n++;
    const dec = s.decision;
    const dd = dec ? details(dec) : {};
    const appr = (dd.approval ?? undefined) as { ticket_id?: string; grant_id?: string; outcome?: string; approvers?: string[] } | undefined;
    const effect = String(dec?.effect ?? "missing");
    const paramsList = arr(s.command?.command_params);
    const r = s.result;
    const approvalLines = s.approvals.map((a) => {
      const opened = s.approvals.find((x) => x.status_tag === "ticket_created");
      const latency = opened && a !== opened ? ` after ${((Date.parse(String(a.time).replace(" ", "T") + "Z") - Date.parse(String(opened.time).replace(" ", "T") + "Z")) / 1000).toFixed(1)} s` : "";
      const by = arr(a.approved_by).length ? ` by ${arr(a.approved_by).join(", ")}` : a.status_tag === "vote" ? ` by ${a.actor}` : "";
      return `<div class="tl-sub approval" data-status="${esc(a.status_tag)}">${esc(shortTime(a.time))} approval <span class="${esc(a.state)}">${esc(a.status_tag)}</span>${esc(by)}${esc(latency)}${a.ticket_id ? ` <span class="muted">ticket ${esc(a.ticket_id)}</span>` : ""}${a.grant_id ? ` <span class="muted">grant ${esc(a.grant_id)}</span>` : ""}${a.reason ? ` <span class="muted">(${esc(a.reason)})</span>` : ""}</div>`;
    });
    const maskLines = s.masking.map((m) => {
      const md = details(m);
      return `<div class="tl-sub masking" data-entity="${esc(md.entity)}">masked ${esc(m.rows)} value(s) of ${esc(md.entity)} in <code>${esc(md.column)}</code> with ${esc(md.strategy)} <span class="muted">(${esc(md.source)})</span></div>`;
    });
    const html = `<div class="tl-cmd e-${esc(effect)}" data-command="${esc(cid)}">
<div class="meta">#${esc(c.command_seq)} ${esc(shortTime(c.time))} <span class="effect ${esc(effect)}">${esc(effect)}</span> by <span class="policies">${esc(arr(dec?.policy_ids).join(", ") || "(none)")}</span> <span class="muted">${esc(dec?.decided_by ?? "")}${dec?.policy_version ? `, policy ${esc(String(dec.policy_version).slice(0, 12))}` : ""}</span></div>
<pre class="command">${esc(c.command_text)}</pre>
${paramsList.length ? `<div class="tl-sub">params: ${paramsList.map((p) => `<code>${esc(p)}</code>`).join(", ")}</div>` : ""}
<div class="tl-sub reason">${esc(dec?.reason ?? "")}${arr(c.actions).length ? ` <span class="muted">actions ${esc(arr(c.actions).join(", "))}; tables ${esc(arr(c.tables).join(", ") || "none")}</span>` : ""}</div>
${appr ? `<div class="tl-sub approval-ref">approval outcome <span class="${esc(appr.outcome)}">${esc(appr.outcome)}</span>${appr.approvers?.length ? ` by ${esc(appr.approvers.join(", "))}` : ""}</div>` : ""}
${approvalLines.join("\n")}
${r ? `<div class="tl-sub result">${r.error_code ? `<span class="err">error ${esc(r.error_code)}: ${esc(r.error_message)}</span>` : `${esc(r.status_tag)}, ${esc(r.rows)} row(s), ${Number(r.bytes).toLocaleString("en-US")} bytes`}, ${esc(ms(r.duration_us))}</div>` : effect === "deny" ? '<div class="tl-sub muted">not executed</div>' : ""}
${maskLines.join("\n")}
</div>`;
    items.push({ time: String(c.time), html });
  }
  items.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  const denied = [...byCommand.values()].filter((s) => s.decision?.effect === "deny").length;
  const masked = [...byCommand.values()].reduce((a, s) => a + s.masking.reduce((b, m) => b + Number(m.rows), 0), 0);
  return `<p><a href="/console/sessions">← Sessions</a></p>
<h2>Session <code id="session-id">${esc(id)}</code></h2>
${header}
<h3>Timeline</h3>
<p class="muted" id="timeline-summary">${n} command(s), ${denied} denied, ${approvals.filter((a) => a.status_tag === "ticket_created").length} approval ticket(s), ${masked.toLocaleString("en-US")} masked value(s)</p>
<div id="timeline">${items.map((i) => i.html).join("\n")}</div>`;
}

function dashboardTabs(active: DashboardName, r: { preset: string; from: string; to: string }): string {
  const tabs = DASHBOARDS.map((d) => `<a href="/console/dashboards/${d.name}${r.preset ? `?range=${r.preset}` : ""}"${d.name === active ? ' class="active"' : ""}>${esc(d.title)}</a>`).join(" · ");
  const presets = Object.keys(RANGES)
    .map((p) => (p === r.preset ? `<b>${p}</b>` : `<a href="/console/dashboards/${active}?range=${p}">${p}</a>`))
    .join(" ");
  return `<p id="tabs">${tabs}</p>
<form class="filters" id="range-form" method="get" action="/console/dashboards/${active}">
<span>Last: ${presets}</span>
<label>From (UTC)<input type="datetime-local" name="from" value="${esc(r.from.slice(0, 16).replace(" ", "T"))}"></label>
<label>To (UTC)<input type="datetime-local" name="to" value="${esc(r.to.slice(0, 16).replace(" ", "T"))}"></label>
<button type="submit">Show</button></form>`;
}

const panel = (id: string, title: string, inner: string) => `<section class="panel" id="panel-${esc(id)}"><h3>${esc(title)}</h3>${inner}</section>`;

/** Pivot (bucket, series, value) rows onto the full bucket list. */
function pivot(rows: Record<string, unknown>[], buckets: string[], seriesKey: string, valueKey: string): Series[] {
  const index = new Map(buckets.map((b, i) => [b, i]));
  const series = new Map<string, number[]>();
  for (const r of rows) {
    const name = seriesKey ? String(r[seriesKey]) : valueKey;
    let vs = series.get(name);
    if (!vs) series.set(name, (vs = new Array<number>(buckets.length).fill(0)));
    const i = index.get(String(r.bucket));
    if (i !== undefined) vs[i] = Number(r[valueKey] ?? 0);
  }
  return [...series.entries()].sort((a, b) => (a[0] === "(others)" ? 1 : b[0] === "(others)" ? -1 : a[0] < b[0] ? -1 : 1)).map(([name, values]) => ({ name, values }));
}

function renderDashboard(name: DashboardName, p: Map<string, Record<string, unknown>[]>, buckets: string[]): string {
  const rows = (k: string) => p.get(k) ?? [];
  switch (name) {
    case "access": {
      const byId = rows("access_by_identity");
      return [
        panel("access_over_time", "Statements by identity over time", stackedColumns("chart-access-over-time", buckets, pivot(rows("access_over_time"), buckets, "identity", "commands"), { unit: "statements" })),
        panel("access_by_identity", "Top identities", bars("chart-access-by-identity", byId.map((r) => ({ label: String(r.identity_subject), value: Number(r.commands) }))) +
          table(["Identity", { label: "Statements", num: true }, { label: "Denied", num: true }, { label: "Held for approval", num: true }, { label: "Sessions", num: true }], byId.map((r) => [td(r.identity_subject), num(r.commands), num(r.denied), num(r.held), num(r.sessions)]))),
      ].join("");
    }
    case "denied":
      return [
        panel("denied_over_time", "Denied statements over time", stackedColumns("chart-denied-over-time", buckets, pivot(rows("denied_over_time"), buckets, "", "denied"), { unit: "denied" })),
        panel("denied_by_policy", "Denied by policy", bars("chart-denied-by-policy", rows("denied_by_policy").map((r) => ({ label: String(r.policy_id), value: Number(r.denied) })))),
        panel("denied_by_identity", "Denied by identity", bars("chart-denied-by-identity", rows("denied_by_identity").map((r) => ({ label: String(r.identity_subject), value: Number(r.denied) })))),
        panel("denied_recent", "Latest denials", table(["Time (UTC)", "Identity", "Connection", "Statement", "Policies"], rows("denied_recent").map((r) => [td(shortTime(r.time)), td(r.identity_subject), td(r.connection), tdHtml(`<a href="/console/sessions/${encodeURIComponent(String(r.session_id))}"><code>${esc(String(r.command_text).slice(0, 120))}</code></a>`), td(arr(r.policy_ids).join(", "))]))),
      ].join("");
    case "approvals": {
      const states = rows("approval_states");
      const lat = rows("approval_latency");
      const idx = new Map(buckets.map((b, i) => [b, i]));
      const med = new Array<number | null>(buckets.length).fill(null);
      const p95 = new Array<number | null>(buckets.length).fill(null);
      for (const r of lat) {
        const i = idx.get(String(r.bucket));
        if (i === undefined) continue;
        med[i] = r.median_ms === null || Number.isNaN(Number(r.median_ms)) ? null : Math.round(Number(r.median_ms) / 100) / 10;
        p95[i] = r.p95_ms === null || Number.isNaN(Number(r.p95_ms)) ? null : Math.round(Number(r.p95_ms) / 100) / 10;
      }
      const secs = (v: unknown) => (v === null || v === undefined || Number.isNaN(Number(v)) ? "" : `${(Number(v) / 1000).toFixed(1)} s`);
      return [
        panel("approval_states", "Tickets by outcome", bars("chart-approval-states", states.map((r) => ({ label: String(r.state), value: Number(r.tickets) }))) +
          table(["Outcome", { label: "Tickets", num: true }, { label: "Median time to decision", num: true }, { label: "p95", num: true }], states.map((r) => [td(r.state, String(r.state)), num(r.tickets), td(secs(r.median_ms), "n"), td(secs(r.p95_ms), "n")]), 'id="approval-states"')),
        panel("approval_latency", "Time to decision (seconds): median and p95", lines("chart-approval-latency", buckets, [{ name: "median", values: med }, { name: "p95", values: p95 }], { unit: "s" })),
        panel("approvers", "Approvals by approver", bars("chart-approvers", rows("approvers").map((r) => ({ label: String(r.approver), value: Number(r.approvals) })))),
      ].join("");
    }
    case "masking": {
      const ent = rows("masking_by_entity");
      return [
        panel("masking_by_entity", "Masked values by entity and strategy", bars("chart-masking-by-entity", ent.map((r) => ({ label: `${r.entity} (${r.strategy})`, value: Number(r.values_masked) }))) +
          table(["Entity", "Strategy", { label: "Values masked", num: true }, { label: "Masking events", num: true }, { label: "Commands", num: true }], ent.map((r) => [td(r.entity), td(r.strategy), num(r.values_masked), num(r.events), num(r.commands)]), 'id="masking-table"')),
        panel("masking_over_time", "Masked values over time by entity", stackedColumns("chart-masking-over-time", buckets, pivot(rows("masking_over_time"), buckets, "entity", "values_masked"), { unit: "values" })),
        panel("masking_by_column", "Top masked columns", bars("chart-masking-by-column", rows("masking_by_column").map((r) => ({ label: `${r.column} (${r.entity})`, value: Number(r.values_masked) })))),
      ].join("");
    }
  }
}
