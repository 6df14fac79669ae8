// CPU accounting for benchmarks: user+system CPU time of the processes this
// benchmark started (the services, nats-server, pgbench) and of PostgreSQL,
// read from /proc, so a run can say per statement where the CPU went. CPU time
// per operation is much less sensitive to other load on the machine than
// throughput is.
import { readdirSync, readFileSync } from "node:fs";

const TICK_US = 1_000_000 / 100; // USER_HZ is 100 on Linux

interface ProcCpu {
  pid: number;
  ppid: number;
  name: string;
  us: number;
}

function readProc(pid: string): ProcCpu | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces: the fields after the closing paren are fixed.
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const f = stat.slice(close + 2).split(" ");
    const ppid = Number(f[1]);
    const us = (Number(f[11]) + Number(f[12])) * TICK_US;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    const svc = /services\/([\w-]+)\/dist\/main\.js/.exec(cmd)?.[1] ?? (/bench\/forwarder\.js/.test(cmd) ? "forwarder" : undefined);
    return { pid: Number(pid), ppid, name: svc ?? comm, us };
  } catch {
    return undefined; // ended meanwhile
  }
}

/** CPU microseconds by process name: descendants of this process, plus every `postgres` process. */
export function cpuSnapshot(): Map<string, number> {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(readProc)
    .filter((p): p is ProcCpu => p !== undefined);
  const children = new Map<number, ProcCpu[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const mine = new Set<number>();
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      if (!mine.has(c.pid)) {
        mine.add(c.pid);
        walk(c.pid);
      }
    }
  };
  walk(process.pid);
  const out = new Map<string, number>();
  for (const p of all) {
    if (!mine.has(p.pid) && p.name !== "postgres") continue;
    out.set(p.name, (out.get(p.name) ?? 0) + p.us);
  }
  out.set("bench driver (this process)", process.cpuUsage().user + process.cpuUsage().system);
  return out;
}

/** CPU used between two snapshots, per name (processes that started in between count from zero). */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out.set(k, d);
  }
  return out;
}
