// Public keys registered to identities (listeners.ssh.authorizedKeys).
import { createHash } from "node:crypto";
import type { ParsedKey } from "ssh2";
import { utils } from "./ssh2.js";
import type { Identity } from "@gatehouse/proto";
import type { AuthorizedKeyConfig } from "./options.js";

export interface KeyEntry {
  key: ParsedKey;
  identity: Identity;
}

export class KeyIndex {
  private readonly byBlob = new Map<string, KeyEntry>();

  constructor(keys: AuthorizedKeyConfig[]) {
    for (const k of keys) {
      const parsed = utils.parseKey(k.key);
      if (parsed instanceof Error) continue; // validated in parseOptions
      const blob = parsed.getPublicSSH();
      this.byBlob.set(blob.toString("base64"), {
        key: parsed,
        identity: {
          subject: k.subject,
          name: k.name ?? k.subject,
          groups: k.groups ?? [],
          kind: k.kind ?? "agent",
          issuer: "gatehouse:ssh-key",
          // The key's fingerprint identifies the credential (never secret).
          tokenId: this.fingerprintOf(blob),
          clientId: "",
          expiresAtUnix: 0,
        },
      });
    }
  }

  find(_algo: string, blob: Buffer): KeyEntry | undefined {
    return this.byBlob.get(blob.toString("base64"));
  }

  fingerprintOf(blob: Buffer): string {
    return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
  }
}
