import { runCli } from './program.js';

// Drivers unref their timers (a library must not keep an application alive), so while a command
// waits on, say, a connect timeout, nothing else may hold the event loop: hold it here until the
// command is done, then exit explicitly so a driver's leftover sockets cannot keep it running.
const keepAlive = setInterval(() => {}, 1 << 30);
runCli(process.argv.slice(2)).then((code) => {
  clearInterval(keepAlive);
  process.exit(code);
});
