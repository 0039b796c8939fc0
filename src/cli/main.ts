// Entry point of the built CLI (bin/portway imports dist/cli/main.js).
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2));
