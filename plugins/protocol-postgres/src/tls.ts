// The listener's TLS identity: configured PEM files, or a self-signed dev
// certificate generated once into <dataDir>/tls/ with the openssl CLI.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ServerTls {
  context: SecureContext;
  /** Where the certificate came from (for the startup log). */
  source: string;
}

export async function loadServerTls(cfg: { cert?: string; key?: string } | undefined, dataDir: string): Promise<ServerTls> {
  if (cfg?.cert || cfg?.key) {
    if (!cfg.cert || !cfg.key) throw new Error("listeners.postgres.tls: set both cert and key (PEM files), or neither for a dev certificate");
    return { context: contextFrom(cfg.cert, cfg.key), source: cfg.cert };
  }
  const dir = join(dataDir, "tls");
  const cert = join(dir, "postgres-dev.crt");
  const key = join(dir, "postgres-dev.key");
  if (!existsSync(cert) || !existsSync(key)) await generateDevCert(dir, cert, key);
  return { context: contextFrom(cert, key), source: `${cert} (generated dev certificate)` };
}

function contextFrom(certFile: string, keyFile: string): SecureContext {
  let cert: Buffer, key: Buffer;
  try {
    cert = readFileSync(certFile);
    key = readFileSync(keyFile);
  } catch (e) {
    throw new Error(`cannot read TLS certificate/key: ${(e as Error).message}`);
  }
  try {
    return createSecureContext({ cert, key });
  } catch (e) {
    throw new Error(`invalid TLS certificate/key (${certFile}, ${keyFile}): ${(e as Error).message}`);
  }
}

async function generateDevCert(dir: string, cert: string, key: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Generate under temporary names and rename, so concurrent starts never see half a pair.
  const tmp = `.tmp-${process.pid}-${Date.now()}`;
  const tmpCert = join(dir, `cert${tmp}`);
  const tmpKey = join(dir, `key${tmp}`);
  try {
    await run("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "825",
      "-subj", "/CN=gatehouse-dev",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      "-keyout", tmpKey, "-out", tmpCert,
    ]);
    renameSync(tmpKey, key);
    renameSync(tmpCert, cert);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT")
      throw new Error("cannot generate a dev TLS certificate: openssl not found; install openssl (apt-get install openssl) or set listeners.postgres.tls.cert/key");
    throw new Error(`cannot generate a dev TLS certificate in ${dir}: ${err.stderr?.trim() || err.message}; set listeners.postgres.tls.cert/key`);
  } finally {
    rmSync(tmpCert, { force: true });
    rmSync(tmpKey, { force: true });
  }
}
