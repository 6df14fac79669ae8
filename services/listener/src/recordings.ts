// Session recordings for plugins (ctx.recording): chunks go in order to JetStream
// subject gatehouse.recording.<session>, each with a Nats-Msg-Id "<session>:<n>" so a
// retried publish is stored once. Chunks written close together share one message.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { ensureRecordingStream, recordingSubject, type Logger } from "@gatehouse/runtime";
import type { RecordingWriter } from "@gatehouse/plugin-sdk";

const MAX_MESSAGE = 256 * 1024;

export class Recordings {
  private js: JetStreamClient;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
  }

  private ensure(): Promise<void> {
    this.ready ??= ensureRecordingStream(this.nc).catch((e) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  writer(sessionId: string, kind: string): RecordingWriter {
    let buf: string[] = [];
    let size = 0;
    let seq = 0;
    let chain: Promise<void> = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    let failed = false;
    const subject = recordingSubject(sessionId);
    const publish = (data: string, last: boolean) => {
      const n = ++seq;
      chain = chain.then(async () => {
        if (failed) return;
        const h = headers();
        h.set("Gatehouse-Kind", kind);
        h.set("Gatehouse-Seq", String(n));
        if (last) h.set("Gatehouse-Last", "true");
        for (let attempt = 1; ; attempt++) {
          try {
            await this.ensure();
            await this.js.publish(subject, data, { msgID: `${sessionId}:${n}`, headers: h, timeout: 5000 });
            return;
          } catch (e) {
            if (attempt >= 3) {
              failed = true;
              this.log.error({ session: sessionId, err: (e as Error).message }, "recording chunk could not be stored; the rest of this recording is lost");
              return;
            }
            await new Promise((r) => setTimeout(r, 200 * attempt));
          }
        }
      });
    };
    const flush = (last = false) => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (buf.length === 0 && !last) return;
      const data = buf.join("");
      buf = [];
      size = 0;
      publish(data, last);
    };
    return {
      write(chunk: string) {
        buf.push(chunk);
        size += chunk.length;
        if (size >= MAX_MESSAGE) flush();
        else timer ??= setTimeout(() => flush(), 100);
      },
      async close() {
        flush(true);
        await chain;
      },
    };
  }
}
