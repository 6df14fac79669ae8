// Server-side SVG charts: no external assets, no script. Each chart is an <svg>
// with class "chart" and one element per data point carrying data-* attributes
// (tests and screen readers can read values without parsing geometry).
import { esc } from "./html.js";

const COLORS = ["#2456a6", "#d9822b", "#2e9e5b", "#b3261e", "#7b4fb0", "#1b8a9a", "#a36b00", "#c2185b", "#607d8b", "#8d6e63"];

export const color = (i: number): string => COLORS[i % COLORS.length]!;

export interface Series {
  name: string;
  /** One value per bucket (same order as the buckets). */
  values: number[];
}

const fmt = (n: number): string => (Math.abs(n) >= 10_000 ? `${Math.round(n / 1000)}k` : Math.abs(n) >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n * 100) / 100));

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function empty(id: string, w: number, h: number): string {
  return `<svg class="chart empty" id="${esc(id)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="no data"><text x="${w / 2}" y="${h / 2}" text-anchor="middle">No data in this time range</text></svg>`;
}

function legend(series: Series[]): string {
  return `<div class="legend">${series.map((s, i) => `<span><i style="background:${color(i)}"></i>${esc(s.name)}</span>`).join("")}</div>`;
}

/** Stacked columns over time buckets (labels: bucket start text). */
export function stackedColumns(id: string, buckets: string[], series: Series[], opts: { width?: number; height?: number; unit?: string } = {}): string {
  const w = opts.width ?? 640;
  const h = opts.height ?? 220;
  if (buckets.length === 0 || series.length === 0) return empty(id, w, h);
  const left = 44;
  const bottom = 22;
  const plotW = w - left - 8;
  const plotH = h - bottom - 8;
  const totals = buckets.map((_, i) => series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
  const max = niceMax(Math.max(...totals));
  const bw = plotW / buckets.length;
  const parts: string[] = [];
  for (let g = 0; g <= 4; g++) {
    const y = 8 + plotH - (plotH * g) / 4;
    parts.push(`<line x1="${left}" x2="${w - 8}" y1="${y}" y2="${y}" stroke="#e5e7eb"/><text x="${left - 4}" y="${y + 4}" text-anchor="end">${fmt((max * g) / 4)}</text>`);
  }
  buckets.forEach((b, i) => {
    let y = 8 + plotH;
    series.forEach((s, k) => {
      const v = s.values[i] ?? 0;
      if (v <= 0) return;
      const bh = (plotH * v) / max;
      y -= bh;
      parts.push(`<rect class="point" x="${(left + i * bw + bw * 0.1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw * 0.8).toFixed(1)}" height="${bh.toFixed(1)}" fill="${color(k)}" data-bucket="${esc(b)}" data-series="${esc(s.name)}" data-value="${v}"><title>${esc(b)} ${esc(s.name)}: ${v}${opts.unit ? ` ${esc(opts.unit)}` : ""}</title></rect>`);
    });
  });
  const step = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    if (i % step === 0) parts.push(`<text x="${(left + i * bw + bw / 2).toFixed(1)}" y="${h - 6}" text-anchor="middle">${esc(b.slice(5, 13).replace(" ", " "))}</text>`);
  });
  return `<svg class="chart" id="${esc(id)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">${parts.join("")}</svg>${series.length > 1 ? legend(series) : ""}`;
}

/** Lines over time buckets; null values leave a gap. */
export function lines(id: string, buckets: string[], series: Array<{ name: string; values: Array<number | null> }>, opts: { width?: number; height?: number; unit?: string } = {}): string {
  const w = opts.width ?? 640;
  const h = opts.height ?? 220;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  if (buckets.length === 0 || all.length === 0) return empty(id, w, h);
  const left = 52;
  const bottom = 22;
  const plotW = w - left - 8;
  const plotH = h - bottom - 8;
  const max = niceMax(Math.max(...all));
  const x = (i: number) => left + (buckets.length === 1 ? plotW / 2 : (plotW * i) / (buckets.length - 1));
  const y = (v: number) => 8 + plotH - (plotH * v) / max;
  const parts: string[] = [];
  for (let g = 0; g <= 4; g++) {
    const yy = 8 + plotH - (plotH * g) / 4;
    parts.push(`<line x1="${left}" x2="${w - 8}" y1="${yy}" y2="${yy}" stroke="#e5e7eb"/><text x="${left - 4}" y="${yy + 4}" text-anchor="end">${fmt((max * g) / 4)}</text>`);
  }
  series.forEach((s, k) => {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null) return;
      d += `${d === "" || s.values[i - 1] === null ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      parts.push(`<circle class="point" cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${color(k)}" data-bucket="${esc(buckets[i])}" data-series="${esc(s.name)}" data-value="${v}"><title>${esc(buckets[i])} ${esc(s.name)}: ${v}${opts.unit ? ` ${esc(opts.unit)}` : ""}</title></circle>`);
    });
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${color(k)}" stroke-width="1.6"/>`);
  });
  const step = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    if (i % step === 0) parts.push(`<text x="${x(i).toFixed(1)}" y="${h - 6}" text-anchor="middle">${esc(b.slice(5, 13))}</text>`);
  });
  return `<svg class="chart" id="${esc(id)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">${parts.join("")}</svg>${legend(series.map((s) => ({ name: s.name, values: [] })))}`;
}

/** Horizontal bars, one per label. */
export function bars(id: string, items: Array<{ label: string; value: number; note?: string }>, opts: { width?: number } = {}): string {
  const w = opts.width ?? 640;
  const rowH = 20;
  const h = Math.max(40, items.length * rowH + 10);
  if (items.length === 0) return empty(id, w, 60);
  const labelW = Math.min(260, 14 + Math.max(...items.map((i) => i.label.length)) * 6.2);
  const plotW = w - labelW - 70;
  const max = Math.max(...items.map((i) => i.value), 1);
  const parts = items.map((it, i) => {
    const y = 5 + i * rowH;
    const bw = Math.max(1, (plotW * it.value) / max);
    const label = it.label.length > 42 ? `${it.label.slice(0, 41)}…` : it.label;
    return `<text x="${labelW - 6}" y="${y + 13}" text-anchor="end">${esc(label)}</text><rect class="point" x="${labelW}" y="${y + 2}" width="${bw.toFixed(1)}" height="${rowH - 6}" fill="${color(i)}" data-label="${esc(it.label)}" data-value="${it.value}"><title>${esc(it.label)}: ${it.value}${it.note ? ` (${esc(it.note)})` : ""}</title></rect><text x="${(labelW + bw + 4).toFixed(1)}" y="${y + 13}">${esc(fmt(it.value))}${it.note ? ` ${esc(it.note)}` : ""}</text>`;
  });
  return `<svg class="chart" id="${esc(id)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">${parts.join("")}</svg>`;
}

/** Every bucket start from `from` to `to` (exclusive), so charts show empty buckets too. */
export function bucketStarts(fromMs: number, toMs: number, bucketHours: number): string[] {
  const step = bucketHours * 3_600_000;
  const start = Math.floor(fromMs / step) * step;
  const out: string[] = [];
  for (let t = start; t < toMs && out.length < 2000; t += step) out.push(new Date(t).toISOString().slice(0, 19).replace("T", " "));
  return out;
}
