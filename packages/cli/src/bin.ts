import { runCli } from './program.js';

// Exit explicitly: a command that has finished must not be kept alive by a driver's sockets.
runCli(process.argv.slice(2)).then((code) => process.exit(code));
