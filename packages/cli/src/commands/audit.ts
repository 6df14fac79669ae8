import type { CliCommand } from "../command.js";

const command: CliCommand = {
  usage: "gatehouse audit: not written yet\n",
  async run() {
    process.stderr.write("gatehouse audit: not written yet\n");
    return 1;
  },
};
export default command;
