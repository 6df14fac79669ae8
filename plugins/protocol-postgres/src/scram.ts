// SCRAM-SHA-256 client (RFC 5802 / RFC 7677) as PostgreSQL uses it: empty
// username in the messages (the startup user counts), no channel binding.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScramError";
  }
}

const hmac = (key: Buffer, data: string) => createHmac("sha256", key).update(data).digest();

function attributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(",")) {
    const eq = part.indexOf("=");
    if (eq !== 1) throw new ScramError(`malformed SCRAM message from server`);
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

export class ScramClient {
  private readonly nonce = randomBytes(18).toString("base64");
  private readonly clientFirstBare = `n=,r=${this.nonce}`;
  private serverSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** client-first-message (with the "n,," GS2 header: no channel binding). */
  first(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** client-final-message for the server-first-message. */
  final(serverFirst: string): string {
    const a = attributes(serverFirst);
    const nonce = a.get("r");
    const salt = a.get("s");
    const iterations = Number(a.get("i"));
    if (!nonce || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new ScramError("server nonce does not extend the client nonce");
    if (!salt) throw new ScramError("server sent no salt");
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw new ScramError(`unreasonable iteration count ${a.get("i")}`);
    // SASLprep is approximated by NFKC; PostgreSQL itself uses the raw bytes when prep fails.
    const salted = pbkdf2Sync(this.password.normalize("NFKC"), Buffer.from(salt, "base64"), iterations, 32, "sha256");
    const clientKey = hmac(salted, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /** Check the server-final-message: proves the server knew the password too. */
  verify(serverFinal: string): void {
    const a = attributes(serverFinal);
    if (a.has("e")) throw new ScramError(`server rejected the SCRAM exchange: ${a.get("e")}`);
    const v = Buffer.from(a.get("v") ?? "", "base64");
    if (!this.serverSignature || v.length !== this.serverSignature.length || !timingSafeEqual(v, this.serverSignature))
      throw new ScramError("server signature does not match (the server does not know the password)");
  }
}
