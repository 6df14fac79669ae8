// asciicast v2 of an interactive session: a header line, then [time, code, data]
// events: "o" output, "i" input, "r" resize ("COLSxROWS").
import type { RecordingWriter } from "@gatehouse/plugin-sdk";

/** Output ending like a password prompt: the next input line is recorded as "*". */
const SECRET_PROMPT = /(password|passphrase|passcode|token|secret)[^\n]{0,40}:\s*$/i;

export class Asciicast {
  private readonly t0 = performance.now();
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private readonly inDecoder = new TextDecoder("utf-8", { fatal: false });
  private tail = "";
  private hidingInput = false;

  constructor(
    private readonly w: RecordingWriter,
    header: { width: number; height: number; term?: string; title?: string },
  ) {
    w.write(
      JSON.stringify({
        version: 2,
        width: header.width,
        height: header.height,
        timestamp: Math.floor(Date.now() / 1000),
        env: { TERM: header.term ?? "xterm", SHELL: "" },
        title: header.title,
      }) + "\n",
    );
  }

  private t(): number {
    return Math.round(performance.now() - this.t0) / 1000;
  }

  output(chunk: Buffer): void {
    const s = this.decoder.decode(chunk, { stream: true });
    if (!s) return;
    this.tail = (this.tail + s).slice(-200);
    if (SECRET_PROMPT.test(this.tail)) this.hidingInput = true;
    this.w.write(JSON.stringify([this.t(), "o", s]) + "\n");
  }

  input(chunk: Buffer): void {
    let s = this.inDecoder.decode(chunk, { stream: true });
    if (!s) return;
    if (this.hidingInput) {
      // Keep line ends so the recording shows that something was typed, never what.
      const nl = s.search(/[\r\n]/);
      if (nl < 0) s = "*".repeat(s.length);
      else {
        s = "*".repeat(nl) + s.slice(nl);
        this.hidingInput = false;
        this.tail = "";
      }
    }
    this.w.write(JSON.stringify([this.t(), "i", s]) + "\n");
  }

  resize(cols: number, rows: number): void {
    this.w.write(JSON.stringify([this.t(), "r", `${cols}x${rows}`]) + "\n");
  }

  close(): Promise<void> {
    return this.w.close();
  }
}
