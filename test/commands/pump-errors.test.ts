// Exit codes a Makefile or cron job can trust when the pump cannot do its work: 2 for bad usage,
// 1 for a broker that cannot be reached (after a few attempts, with the reason on stderr).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

let tmp: DirectoryResult;
let closed: number; // a loopback port nobody listens on
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'a.txt'), 'hello\n');
  await mkdir(join(tmp.path, 'folder'));
  expect((await runCli(['make', '--force', 'a.txt'], { cwd: tmp.path })).exitCode).toBe(0);
  closed = await freePort();
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('pump commands fail clearly', () => {
  it.each([
    [['announce', 'a.txt'], /--base-url/],
    [['announce', '--base-url', 'http://h/', '--post', 'carrier-pigeon://x', 'a.txt'], /--post carrier-pigeon:\/\/x: expected/],
    [['announce', '--base-url', 'http://h/', '--post', '-', '--json', 'a.txt'], /both want stdout/],
    [['subscribe', 'spool:x'], /--dir/],
    [['subscribe', 'gopher://x', '--dir', 'm'], /SOURCE gopher:\/\/x: expected/],
    [['subscribe', '-', '--dir', 'm', '--retries', 'many'], /--retries expects a whole number/],
    [['subscribe', '-', '--dir', 'm', '--ca-file', 'nope.pem'], /cannot read --ca-file: nope\.pem does not exist/],
    [['sync', '--host-fingerprint', 'MD5:xx', 'x.zsync'], /not of the form SHA256:/],
    [['announce', '--base-url', 'not a url', 'a.txt'], /--base-url "not a url" is not a URL/],
    [['announce', '--base-url', 'gopher://h/', 'a.txt'], /--base-url gopher:\/\/h\/: subscribers fetch over http, https, sftp, file/],
    [['subscribe', '-', '--dir', '/etc/hostname'], /--dir: \/etc\/hostname is not a directory/],
    [['subscribe', '-', '--dir', 'a.txt/sub'], /--dir: cannot make .*a\.txt\/sub: a file is in the way/],
    [['watch', '/nonexistent', '--base-url', 'http://h/'], /cannot watch: \/nonexistent does not exist/],
    [['watch', 'a.txt', '--base-url', 'http://h/'], /cannot watch: a\.txt is not a directory/],
    [['zsync', '-Z', '-Q', '-X', 'x.zsync'], /zpump zsync: unknown option -Z \(the drop-in takes -u -i -o -k -A -q -s -V -h\)/],
    [['sync', 'a.txt.zsync', 'folder'], /TARGET folder is a directory: give the path of the file to write/],
  ])('zpump %j exits 2', async (args, why) => {
    const run = await runCli(args, { cwd: tmp.path });
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toMatch(why);
    expect(run.stderr).not.toMatch(/\b(EEXIST|ENOENT|ENOTDIR)\b|seed folder/);
  });

  it('exit 1 when the broker cannot be reached (announce to AMQP and MQTT, subscribe --once from AMQP)', async () => {
    const amqp = `amqp://guest:guest@127.0.0.1:${closed}/`;
    const runs = await Promise.all([
      runCli(['announce', '--base-url', 'http://h/', '--post', amqp, 'a.txt'], { cwd: tmp.path }),
      runCli(['announce', '--base-url', 'http://h/', '--post', `mqtt://127.0.0.1:${closed}`, 'a.txt'], { cwd: tmp.path }),
      runCli(['subscribe', amqp, '--dir', 'm', '--once'], { cwd: tmp.path }),
    ]);
    const many = await runCli(['announce', '--base-url', 'http://h/', '--post', amqp, 'a.txt', 'a.txt', 'a.txt'], { cwd: tmp.path });
    // The broker is tried for the first file only: as many attempts as for one file.
    expect(many.stderr.match(/retrying/g)).toHaveLength(runs[0]!.stderr.match(/retrying/g)!.length);
    expect(many.stderr.match(/a\.txt: not announced: cannot reach the broker/g)).toHaveLength(2);
    for (const run of [...runs, many]) {
      expect(run.exitCode, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/cannot reach the (MQTT )?broker at .*ECONNREFUSED/);
      expect(run.stderr).not.toContain('guest:guest'); // passwords are not printed
    }
  });
});
