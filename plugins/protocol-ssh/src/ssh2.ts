// ssh2 is CommonJS: take its values from the default export (types import normally).
import ssh2 from "ssh2";

export const { Server, Client, utils } = ssh2;
