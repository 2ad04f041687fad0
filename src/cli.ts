#!/usr/bin/env node
// The zpump command line: parses flags, calls a command module, maps errors to exit codes
// (0 done, 1 the work failed, 2 bad usage or input). The only place that exits the process.
// Command modules and heavy libraries load lazily so `zpump --help` starts fast.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { exitCodeFor, isZpumpError } from './errors.js';
import { DEFAULT_BUDGET, DEFAULT_THRESHOLD } from './api.js';
import { BLOCK_SIZE_HELP, parseBlockSize, parseCount, parseEngine, parseFormat, parseStrongHash, parseMillis, parseSeconds, parseSize } from './commands/flags.js';
import { parseGeometry } from './format/wnm.js';

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

  // How to reach data servers: shared by sync and subscribe.
  const transporting = (cmd: Command): Command =>
    cmd
      .option('--ca-file <PEM>', 'extra CA certificates for https (e.g. a private CA), trusted besides the usual ones')
      .option('--ssh-key <FILE>', 'private key for sftp:// data URLs (default: the SSH agent, $SSH_AUTH_SOCK)')
      .option('--known-hosts <FILE>', 'known_hosts file to check sftp servers against (default ~/.ssh/known_hosts)')
      .option('--host-fingerprint <SHA256:...>', 'accept the sftp server whose host key has this fingerprint (ssh-keygen -l -f KEY.pub)')
      .addOption(new Option('--stall-timeout <SECS>', 'abandon a transfer (E_NETWORK, exit 1) that receives no byte for this long, connecting included').default(30).argParser(usage((t) => parseSeconds(t, '--stall-timeout'))));

  cli
    .command('make')
    .summary('write FILE.zsync (zsyncmake-compatible) for each FILE')
    .description(
      'Write a zsync control file (signature) for each FILE, byte for byte what zsyncmake 0.6.2 writes ' +
        '(--format 0.8: what upstream zsyncmake 0.7+ writes). Files below --threshold get no signature ' +
        '(exit 0 with a note): they are cheaper to send whole.',
    )
    .argument('<FILE...>', 'files to sign')
    .addOption(new Option('-b, --block-size <SIZE|auto>', `block size, a power of two from 1k to 64M (${BLOCK_SIZE_HELP}); auto = smallest power of two >= 4k whose signature fits --budget`).default('auto').argParser(usage(parseBlockSize)))
    .addOption(new Option('--budget <SIZE>', 'signature size budget for --block-size auto').default(DEFAULT_BUDGET, '64k').argParser(usage((t) => parseSize(t, '--budget'))))
    .addOption(new Option('-t, --threshold <SIZE>', 'files smaller than this get no signature').default(DEFAULT_THRESHOLD, '1M').argParser(usage((t) => parseSize(t, '--threshold'))))
    .option('-f, --force', 'make a signature whatever the size', false)
    .option('-u, --url <URL>', "URL header (default: the file's name, relative to the .zsync)")
    .option('-o, --output <PATH>', 'output path (one FILE only; default FILE.zsync)')
    .addOption(new Option('--engine <auto|zsync|js>', 'zsync = the C zsyncmake, js = built-in; auto uses zsyncmake 0.6.2 when installed, js otherwise or when it fails').default('auto').argParser(usage(parseEngine)))
    .addOption(new Option('--format <0.6.2|0.8>', "0.6.2 = zsyncmake 0.6.2's format, byte for byte (every zsync reads it); 0.8 = format spec 0.8 as upstream zsyncmake 0.7+ writes it (SHA-256 File-Hash, whole block digests; js engine). Default 0.6.2").argParser(usage(parseFormat)))
    .addOption(new Option('--strong-hash <md4|md5|sha224>', 'block hash of a --format 0.8 file (implies it); the spec advises against MD4 for automated use, but zsync 0.6.x reads MD4 files only').argParser(usage(parseStrongHash)))
    .option('--json', 'one JSON result per file on stdout', false)
    .addHelpText('after', '\nExamples:\n  zpump make big.nc                     # big.nc.zsync, block size chosen to fit 64 KiB\n  zpump make -b 64k --force small.bin   # fixed block size, even below 1 MiB\n  zpump make --json data/*.grib2        # one JSON line per file, for scripts\n  zpump make --strong-hash sha224 x.nc  # format spec 0.8 (zsync 0.7+ and zpump read it; 0.6.2 does not)')
    .action(async (files: string[], opts) => {
      const { runMake } = await import('./commands/make.js');
      setExit(await runMake(files, opts));
    });

  transporting(
    cli
      .command('sync')
      .summary('bring TARGET up to date with what CONTROL describes, fetching only changed blocks')
      .description(
        'Rebuild TARGET from the blocks it (and any --seed) already has, fetching only the rest with HTTP range ' +
          'requests, SFTP reads (sftp://user@host:port/path) or a file: URL or path. The result replaces TARGET ' +
          "only after one whole-file check passes: the announcement's identity (sha512 or md5) when CONTROL is " +
          "a message, else the control file's SHA-1 or File-Hash. A two-level message fetches only the fine " +
          'records and blocks it needs.',
      )
      .argument('<CONTROL>', 'path or http(s) URL of a .zsync, or an announcement (.json file, - for stdin)')
      .argument('[TARGET]', "the local file to update (default: the control file's Filename)")
      .option('-i, --seed <FILE>', 'local file to reuse blocks from (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
      .option('-u, --url <URL>', 'where to fetch the data (overrides the URL header)'),
  )
    .addOption(new Option('--engine <auto|zsync|js>', 'zsync = the C client (plain http:// only), js = built-in; auto uses zsync for http:// when installed').default('auto').argParser(usage(parseEngine)))
    .addOption(new Option('--threads <N>', 'threads scanning local data (js engine; default: one per core; 1 = one thread, as before)').argParser(usage((t) => parseCount(t, '--threads', 1))))
    .option('--accept-unverified', 'CONTROL is an announcement whose identity zpump cannot check (method none or unknown): use it unchecked', false)
    .option('--json', 'result as JSON: engine, bytesReused, bytesFetched, requests, seconds, verified', false)
    .addHelpText('after', '\nExamples:\n  zpump sync http://data.example.org/big.nc.zsync big.nc\n  zpump sync --json -i old-copy.nc big.nc.zsync big.nc\n  zpump sync -u sftp://me@data.example.org/srv/big.nc --ssh-key ~/.ssh/id_ed25519 big.nc.zsync big.nc')
    .action(async (control: string, target: string | undefined, opts) => {
      const { runSync } = await import('./commands/sync.js');
      setExit(await runSync(control, target, opts));
    });

  cli
    .command('inspect')
    .summary('show a .zsync or an announcement: headers, blocks, signature size, whether it can be used')
    .argument('<CONTROL>', 'path of a .zsync file, or an announcement (.json, - for stdin)')
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

  const publishing = (cmd: Command): Command =>
    cmd
      .requiredOption('--base-url <URL>', 'where subscribers fetch the data from (http://, https://, sftp://, file://); sent without its trailing slash')
      .option('--root <DIR>', 'relPath is taken relative to DIR (default: the current folder; for watch: the watched folder)')
      .option('--post <SINK>', '- (stdout, JSON lines) | spool:DIR | amqp[s]://user:pass@host/vhost | mqtt[s]://host:port', '-')
      .option('--exchange <NAME>', 'AMQP topic exchange / first MQTT topic level', 'xpublic')
      .option('--write-zsync', 'also write FILE.zsync beside each signed file (for plain zsync users)', false)
      .addOption(new Option('-b, --block-size <SIZE|auto>', `block size, 1k to 64M (${BLOCK_SIZE_HELP}); auto = smallest power of two >= 4k whose signature fits --budget`).default('auto').argParser(usage(parseBlockSize)))
      .addOption(new Option('--budget <SIZE>', 'signature size budget for --block-size auto (default: what fits --inline-limit in base64, 48k)').argParser(usage((t) => parseSize(t, '--budget'))))
      .addOption(new Option('-t, --threshold <SIZE>', 'files smaller than this are announced without a signature (sent whole)').default(DEFAULT_THRESHOLD, '1M').argParser(usage((t) => parseSize(t, '--threshold'))))
      .addOption(new Option('--inline-limit <SIZE>', 'larger signatures travel by reference: FILE.zsync is written beside the file').default(64 << 10, '64k').argParser(usage((t) => parseSize(t, '--inline-limit'))))
      .addOption(new Option('--levels <1|2>', 'two levels: a coarse signature inline sized to fit --message-limit, and a fine FILE.zsync on the site whose records subscribers fetch where their copy differs; 1: one signature (inline up to --inline-limit, else by reference)').choices(['1', '2']).default('2'))
      .addOption(new Option('--message-limit <SIZE>', 'SENDING side, two levels: the whole message, every field included, stays within SIZE (wis2: never over 8 192); the coarse block size is the smallest power of two that fits. (subscribe --message-limit is the receiving cap)').default(8 << 10, '8k').argParser(usage((t) => parseSize(t, '--message-limit'))))
      .addOption(new Option('--fine-block-size <SIZE>', "block size of the fine signature (default: zsyncmake's, 2k below 100 000 000 bytes, else 4k)").argParser(usage((t) => parseSize(t, '--fine-block-size'))))
      .option('--signature-dir <DIR>', 'write fine signatures under DIR (same relPath + .zsync) instead of beside the files, e.g. for a read-only tree')
      .option('--signature-url <URL>', 'where subscribers fetch --signature-dir (a URL under --base-url); required unless DIR is inside --root')
      .addOption(new Option('--engine <auto|zsync|js>', 'engine that makes signatures').default('auto').argParser(usage(parseEngine)))
      .addOption(new Option('--signature-format <0.6.2|0.8>', "signatures in zsync 0.6.2's format (default: every zsync reads them) or format spec 0.8 (as make --format 0.8)").argParser(usage(parseFormat)))
      .addOption(new Option('--strong-hash <md4|md5|sha224>', 'block hash of spec 0.8 signatures (implies --signature-format 0.8); zsync 0.6.x cannot read md5/sha224 ones, zpump subscribers read all').argParser(usage(parseStrongHash)))
      .addOption(new Option('--format <v03|wis2>', 'message form: Sarracenia v03, or WIS2 Notification Message (at most 8 192 bytes: the signature goes by reference when it cannot fit)').choices(['v03', 'wis2']).default('v03'))
      .option('--data-id-prefix <PREFIX>', 'wis2: data_id is PREFIX/relPath (default: relPath)')
      .addOption(new Option('--geometry <GEOJSON>', 'wis2: the data\'s GeoJSON Point or Polygon (default: null)').argParser(usage(parseGeometry)))
      .option('--topic <TOPIC>', 'MQTT: post every message on TOPIC instead of EXCHANGE/v03/<folders> (WIS2: origin/a/wis2/CENTRE-ID/data/core/...)')
      .option('--json', 'one JSON result per announcement on stdout (not with --post -)', false);

  publishing(
    cli
      .command('announce')
      .summary('make a notification message per file, its signature inside, and post it')
      .description(
        'Post one announcement per FILE (Sarracenia v03 JSON, or a WIS2 notification message with ' +
          '--format wis2: relPath, size, mtime, sha512 identity). At or above --threshold the file gets two ' +
          'signatures: a coarse one inside the message (sized to fit --message-limit) and a fine FILE.zsync ' +
          'written beside it (or under --signature-dir) before the message is posted; --levels 1 sends one ' +
          'signature instead. Subscribers fetch the data from --base-url + relPath, reusing the blocks they ' +
          'already have.',
      )
      .argument('<FILE...>', 'files to announce'),
  )
    .addHelpText('after', '\nExamples:\n  zpump announce --base-url http://data.example.org/ --root /srv/data /srv/data/model/run12/*.grib2\n  zpump announce --base-url file:///srv/data/ --post spool:/var/spool/zpump big.nc\n  zpump announce --base-url http://host/ --post amqp://user:pass@broker/ --root /srv/data /srv/data/x.nc')
    .action(async (files: string[], opts) => {
      const { runAnnounce } = await import('./commands/announce.js');
      setExit(await runAnnounce(files, opts));
    });

  publishing(
    cli
      .command('watch')
      .summary('announce every settled change under DIR (creations, rewrites, appends, removals, renames)')
      .description(
        'Watch DIR and announce each file once it has stopped changing for --settle; removals and renames are ' +
          'announced as v03 fileOp messages. Temporary files, .zsync files and zpump\'s own files are ignored. ' +
          'When the broker goes away, announcements wait and are posted once it is back. Stop with Ctrl-C.',
      )
      .argument('<DIR>', 'folder to watch'),
  )
    .addOption(new Option('--settle <MS>', 'quiet time before a file counts as written').default(2000, '2000').argParser(usage((t) => parseMillis(t, '--settle'))))
    .option('--initial', 'also announce the files already there when watching starts', false)
    .addHelpText('after', '\nExample:\n  zpump watch /srv/data --base-url http://data.example.org/ --post amqp://user:pass@broker/')
    .action(async (dir: string, opts) => {
      const { runWatch } = await import('./commands/watch.js');
      setExit(await runWatch(dir, opts));
    });

  transporting(
    cli
      .command('subscribe')
      .summary('apply announcements to a local tree, fetching only changed blocks')
      .description(
        'Take announcements from SOURCE and bring --dir up to date: files without a signature or without a local ' +
          'copy are fetched whole, the others synced block by block; each result is verified against the message\'s ' +
          'identity (sha512 or md5) before it replaces the old copy, and a message is acknowledged only after that. Refused ' +
          'messages (bad JSON, a relPath leaving --dir, a disallowed URL scheme...) are set aside with the reason: ' +
          'spool:DIR/rejected/, or --rejected for the brokers.\n\n' +
          'SOURCE: spool:DIR | amqp[s]://user:pass@host/vhost | mqtt[s]://host:port | - (JSON lines on stdin)',
      )
      .argument('<SOURCE>', 'where announcements come from')
      .requiredOption('--dir <DIR>', 'local root: relPaths land under it, never outside')
      .option('--once', 'apply what is queued now, then exit (cron, make); exit 1 if any message was set aside', false)
      .option('--queue <NAME>', 'durable AMQP queue (shared by instances) / MQTT session name (default: one per host and --dir)')
      .option('--subtopic <TOPIC>', 'what to receive below v03, levels separated by / (e.g. model/#); a level that is exactly # = everything below, * or + = one level, anything else a folder name (escaped as sr3 does)', '#')
      .option('--topic <FILTER>', 'MQTT: a whole topic filter instead of EXCHANGE/v03/SUBTOPIC (WIS2: origin/a/wis2/+/data/core/#)')
      .option('--shared', 'MQTT: join the shared subscription $share/QUEUE/... so that several subscribers split the stream (needs --queue)', false)
      .addOption(new Option('--instance <N>', 'MQTT --shared: tells apart members on one host with the same --dir').default(1).argParser(usage((t) => parseCount(t, '--instance', 1))))
      .option('--exchange <NAME>', 'AMQP topic exchange / first MQTT topic level', 'xpublic')
      .option('--allow-file', 'accept file: data URLs (off by default: a message could read any local file)', false)
      .option('--rename-strip <PREFIX>', 'sr3 renames name the publisher\'s absolute path: PREFIX of it is the top of --dir (default: the path of the message\'s baseUrl)')
      .option('--accept-unverified', 'apply files whose identity zpump cannot check (method none or unknown; md5 and sha512 are checked)', false)
      .addOption(new Option('--engine <auto|zsync|js>', 'sync engine; auto = the C zsync for http:// when installed, js otherwise').default('auto').argParser(usage(parseEngine)))
      .addOption(new Option('--retries <N>', 'attempts after the first for a failed transfer, with backoff').default(3).argParser(usage((t) => parseCount(t, '--retries'))))
      .addOption(new Option('--retry-delay <SECONDS>', 'first retry delay, doubled each time').default(1).argParser(usage((t) => parseSeconds(t, '--retry-delay'))))
      .addOption(new Option('--prefetch <N>', 'messages in hand at once (AMQP prefetch, MQTT Receive Maximum; files applied in parallel, each file in order)').default(4).argParser(usage((t) => parseCount(t, '--prefetch', 1))))
      .addOption(new Option('--message-limit <SIZE>', 'RECEIVING side: refuse messages larger than this (announce/watch --message-limit sizes what a publisher sends)').default(16 << 20, '16M').argParser(usage((t) => parseSize(t, '--message-limit'))))
      .option('--rejected <DIR>', 'where refused messages are kept (default: DIR/.zpump/rejected; spool: its rejected/)'),
  )
    .option('--json', 'one JSON report per message on stdout', false)
    .addHelpText('after', '\nExamples:\n  zpump subscribe spool:/var/spool/zpump --dir /srv/mirror --once --allow-file\n  zpump subscribe amqp://user:pass@broker/ --queue mirror1 --dir /srv/mirror\n  zpump announce --base-url http://h/ f.nc | zpump subscribe - --dir /tmp/copy')
    .action(async (source: string, opts) => {
      const { runSubscribe } = await import('./commands/subscribe.js');
      setExit(await runSubscribe(source, opts));
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
