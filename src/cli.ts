#!/usr/bin/env node
// The zpump command line: parses flags, calls a command module, maps errors to exit codes
// (0 done, 1 the work failed, 2 bad usage or input). The only place that exits the process.
// Command modules and heavy libraries load lazily so `zpump --help` starts fast.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { exitCodeFor, isZpumpError } from './errors.js';
import { DEFAULT_BUDGET, DEFAULT_THRESHOLD } from './api.js';
import { parseBlockSize, parseEngine, parseSize } from './commands/flags.js';

const usage = (fn: (text: string) => unknown) => (text: string) => {
  try {
    return fn(text);
  } catch (error) {
    // commander prints "error: option '...' argument '...' is invalid. <message>"; we exit 2
    throw new InvalidArgumentError(isZpumpError(error) ? error.message : String(error));
  }
};

function program(setExit: (code: number) => void): Command {
  const cli = new Command('zpump')
    .description('Keep large, changing files in sync by sending only the blocks that changed (zsync signatures, HTTP ranges, SFTP, message bus).')
    .version(process.env.npm_package_version ?? '0.1.0', '--version')
    .showHelpAfterError('(run zpump --help, or zpump COMMAND --help)')
    .exitOverride();

  cli
    .command('make')
    .summary('write FILE.zsync (zsyncmake-compatible) for each FILE')
    .description(
      'Write a zsync control file (signature) for each FILE, byte for byte what zsyncmake 0.6.2 writes.\n' +
        'Files below --threshold get no signature (exit 0 with a note): they are cheaper to send whole.',
    )
    .argument('<FILE...>', 'files to sign')
    .addOption(new Option('-b, --block-size <SIZE|auto>', 'block size, a power of two >= 1k; auto = smallest power of two >= 4k whose signature fits --budget').default('auto').argParser(usage(parseBlockSize)))
    .addOption(new Option('--budget <SIZE>', 'signature size budget for --block-size auto').default(DEFAULT_BUDGET, '64k').argParser(usage((t) => parseSize(t, '--budget'))))
    .addOption(new Option('-t, --threshold <SIZE>', 'files smaller than this get no signature').default(DEFAULT_THRESHOLD, '1M').argParser(usage((t) => parseSize(t, '--threshold'))))
    .option('-f, --force', 'make a signature whatever the size', false)
    .option('-u, --url <URL>', "URL header (default: the file's name, relative to the .zsync)")
    .option('-o, --output <PATH>', 'output path (one FILE only; default FILE.zsync)')
    .addOption(new Option('--engine <auto|zsync|js>', 'zsync = the C zsyncmake, js = built-in; auto uses zsyncmake 0.6.2 when installed, js otherwise or when it fails').default('auto').argParser(usage(parseEngine)))
    .option('--json', 'one JSON result per file on stdout', false)
    .addHelpText('after', '\nExamples:\n  zpump make big.nc                     # big.nc.zsync, block size chosen to fit 64 KiB\n  zpump make -b 64k --force small.bin   # fixed block size, even below 1 MiB\n  zpump make --json data/*.grib2        # one JSON line per file, for scripts')
    .action(async (files: string[], opts) => {
      const { runMake } = await import('./commands/make.js');
      setExit(await runMake(files, opts));
    });

  cli
    .command('sync')
    .summary('bring TARGET up to date with what CONTROL describes, fetching only changed blocks')
    .description(
      'Rebuild TARGET from the blocks it (and any --seed) already has, fetching only the rest with HTTP range\n' +
        'requests (or from a file: URL or path). The result replaces TARGET only after its SHA-1 matches.',
    )
    .argument('<CONTROL>', 'path or http(s) URL of a .zsync')
    .argument('[TARGET]', "the local file to update (default: the control file's Filename)")
    .option('-i, --seed <FILE>', 'local file to reuse blocks from (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('-u, --url <URL>', 'where to fetch the data (overrides the URL header)')
    .option('--ca-file <PEM>', 'extra CA certificates for https (e.g. a private CA)')
    .addOption(new Option('--engine <auto|zsync|js>', 'zsync = the C client (plain http:// only), js = built-in; auto uses zsync for http:// when installed').default('auto').argParser(usage(parseEngine)))
    .option('--json', 'result as JSON: engine, bytesReused, bytesFetched, requests, seconds, verified', false)
    .addHelpText('after', '\nExamples:\n  zpump sync http://data.example.org/big.nc.zsync big.nc\n  zpump sync --json -i old-copy.nc big.nc.zsync big.nc')
    .action(async (control: string, target: string | undefined, opts) => {
      const { runSync } = await import('./commands/sync.js');
      setExit(await runSync(control, target, opts));
    });

  cli
    .command('inspect')
    .summary('show a .zsync: headers, blocks, signature size, whether it can be used')
    .argument('<CONTROL>', 'path of a .zsync file')
    .option('--json', 'machine-readable output', false)
    .action(async (control: string, opts) => {
      const { runInspect } = await import('./commands/inspect.js');
      setExit(await runInspect(control, opts));
    });

  cli
    .command('engines')
    .summary('which engines exist here, their versions and paths')
    .option('--json', 'machine-readable output', false)
    .action(async (opts) => {
      const { runEngines } = await import('./commands/engines.js');
      setExit(await runEngines(opts));
    });

  cli
    .command('zsyncmake')
    .summary("the js engine behind zsyncmake's own flags (drop-in)")
    .argument('[ARGS...]', 'zsyncmake arguments: [-b bs] [-o out] [-f name] [-u url]... [-U url]... [-Z] [-C] [-e] [file]');
  cli
    .command('zsync')
    .summary("the js engine behind the zsync client's own flags (drop-in; https too)")
    .argument('[ARGS...]', 'zsync arguments: [-u referer] [-i seed]... [-o out] [-q] [-k saved.zsync] <.zsync path or URL>');
  return cli;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  try {
    // The drop-ins take the C tools' own getopt-style flags: bypass commander for them.
    if (argv[0] === 'zsyncmake') {
      const { runZsyncmake } = await import('./commands/zsyncmake.js');
      return await runZsyncmake(argv.slice(1));
    }
    if (argv[0] === 'zsync') {
      const { runZsync } = await import('./commands/zsync.js');
      return await runZsync(argv.slice(1));
    }
    await program((c) => { code = c; }).parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help' ? 0 : 2;
    }
    const json = argv.includes('--json');
    if (json) process.stdout.write(JSON.stringify({ error: isZpumpError(error) ? error.code : 'E_INTERNAL', message: error instanceof Error ? error.message : String(error) }) + '\n');
    process.stderr.write(`zpump: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!isZpumpError(error) && error instanceof Error && process.env.ZPUMP_DEBUG) process.stderr.write(`${error.stack}\n`);
    return exitCodeFor(error);
  }
}

// `zpump ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error) => { process.stderr.write(`zpump: internal error: ${String(error)}\n`); process.exitCode = 1; },
);
