// Preloaded into a measured command: reports its peak RSS (kB) on stderr when it exits.
process.on('exit', () => process.stderr.write(`\nbench-maxrss-kb=${process.resourceUsage().maxRSS}\n`));
