// The frame splitter and message parsers on their own.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FrameReader } from "./frames.js";
import { auditParams } from "./audit.js";
import { errorResponse, parseBind, parseErrorFields, ProtocolError, tagRowCount } from "./protocol.js";
import { fe } from "./testing/raw.js";

function frames(): Buffer[] {
  return [fe.query("SELECT 1"), fe.parse("s", "SELECT $1"), fe.bind("p", "s", ["x", null]), fe.execute("p"), fe.sync(), fe.query("x".repeat(70_000))];
}

function readAll(chunks: Buffer[]): Buffer[] {
  const r = new FrameReader(1 << 20, "client");
  const out: Buffer[] = [];
  for (const c of chunks) {
    r.push(c);
    for (let f = r.next(); f; f = r.next()) out.push(Buffer.from(f));
  }
  assert.equal(r.buffered, 0);
  return out;
}

describe("frame codec", () => {
  it("splits frames regardless of how the stream is chunked", () => {
    const all = Buffer.concat(frames());
    const oneByOne = readAll([...all].map((b) => Buffer.from([b])));
    assert.deepEqual(oneByOne, frames());
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 50; round++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < all.length; ) {
        const n = 1 + Math.floor(rand() * 9000);
        chunks.push(all.subarray(i, i + n));
        i += n;
      }
      assert.deepEqual(readAll(chunks), frames());
    }
  });

  it("returns zero-copy views for frames inside one chunk", () => {
    const all = Buffer.concat(frames().slice(0, 5));
    const r = new FrameReader(1 << 20, "client");
    r.push(all);
    const f = r.next()!;
    assert.equal(f.buffer, all.buffer);
  });

  it("takes runs of one frame type inside a chunk, and leaves the rest to next(), however the stream is chunked", () => {
    const row = (i: number) => fe.raw("D", Buffer.concat([Buffer.from([0, 1, 0, 0, 0, String(i).length]), Buffer.from(String(i))]));
    const stream = [fe.raw("T", Buffer.from("desc")), ...Array.from({ length: 40 }, (_, i) => row(i)), fe.raw("C", Buffer.from("SELECT 40\0")), row(99)];
    const all = Buffer.concat(stream);
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 30; round++) {
      const r = new FrameReader(1 << 20, "upstream");
      const got: Buffer[] = [];
      let runs = 0;
      for (let i = 0; i < all.length; ) {
        const n = 1 + Math.floor(rand() * 120);
        r.push(all.subarray(i, i + n));
        i += n;
        for (;;) {
          const run = r.takeRun(0x44);
          if (run) {
            runs++;
            const before = got.length;
            for (let p = run.start; p < run.end; p += 1 + run.buf.readInt32BE(p + 1)) got.push(Buffer.from(run.buf.subarray(p, p + 1 + run.buf.readInt32BE(p + 1))));
            assert.equal(got.length - before, run.count);
            continue;
          }
          const f = r.next();
          if (!f) break;
          got.push(Buffer.from(f));
        }
      }
      assert.deepEqual(got, stream, `round ${round}`);
      assert.equal(r.buffered, 0);
      assert.ok(runs > 0, "some rows came as runs");
    }
  });

  it("rejects bad lengths and oversized frames", () => {
    const r = new FrameReader(100, "client");
    r.push(Buffer.from([0x51, 0, 0, 0, 2]));
    assert.throws(() => r.next(), ProtocolError);
    const r2 = new FrameReader(100, "client");
    r2.push(fe.query("x".repeat(200)).subarray(0, 5));
    assert.throws(() => r2.next(), /larger than the limit of 100 bytes/);
  });

  it("parses Bind parameters (text, null, binary) and records binary as \\x hex", () => {
    const b = parseBind(fe.bind("p", "s", ["héllo", null]));
    assert.equal(b.portal, "p");
    assert.equal(b.statement, "s");
    const params = auditParams([...b.params, { isNull: false, binary: true, value: Buffer.from([0, 255]) }], 1024);
    assert.deepEqual(params, [
      { isNull: false, text: "héllo", binary: false },
      { isNull: true, text: "", binary: false },
      { isNull: false, text: "\\x00ff", binary: true },
    ]);
    assert.throws(() => parseBind(fe.raw("B", Buffer.from("p\0s\0\0\x01"))), ProtocolError);
  });

  it("cuts long audit parameter values with a marker", () => {
    const [p] = auditParams([{ isNull: false, binary: false, value: Buffer.from("a".repeat(100)) }], 16);
    assert.equal(p!.text, "a".repeat(16) + "…[truncated, 100 bytes]");
  });

  it("builds ErrorResponses that parse back", () => {
    const e = parseErrorFields(errorResponse({ severity: "ERROR", code: "42501", message: "gatehouse: denied", detail: "d" }));
    assert.deepEqual(e, { S: "ERROR", V: "ERROR", C: "42501", M: "gatehouse: denied", D: "d" });
  });

  it("reads row counts from command tags", () => {
    assert.equal(tagRowCount("SELECT 3"), 3);
    assert.equal(tagRowCount("INSERT 0 5"), 5);
    assert.equal(tagRowCount("CREATE TABLE"), undefined);
  });
});
