#!/usr/bin/env node
// Entry point of the `strata` command. Kept tiny: command modules (and tfjs) load lazily.
process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
const { main } = await import('./main.js');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Backends such as a threaded wasm build can keep the event loop alive; nothing is pending by now.
setTimeout(() => process.exit(code), 50).unref();
