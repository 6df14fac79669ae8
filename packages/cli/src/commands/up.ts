import type { CliCommand } from "../command.js";

const command: CliCommand = {
  usage: "gatehouse up: not written yet\n",
  async run() {
    process.stderr.write("gatehouse up: not written yet\n");
    return 1;
  },
};
export default command;
