import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAnnouncement, parseV03Time, renderAnnouncement } from '../../src/format/announcement.js';
import { parseControlFile } from '../../src/format/control-file.js';
import { routingKeyOf, topicOf } from '../../src/pump/bus/types.js';
import { buildFileMessage, buildRemoveMessage, checkMessage, localPathFor, recheckLocalPath, relPathOf, renameSourceOf } from '../../src/pump/message.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('buildFileMessage', () => {
  it('puts the whole .zsync inline, relative URL, with size, mtime and sha512 identity', async () => {
    const path = join(tmp.path, 'run12', 'field.grib2');
    await mkdir(join(tmp.path, 'run12'));
    const data = seededBytes(3 << 20, 7);
    await writeFile(path, data);
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://data.example.org/', engine: 'js' });
    expect(built.signature).toBe('inline');
    const m = parseAnnouncement(renderAnnouncement(built.message));
    expect(m).toMatchObject({ relPath: 'run12/field.grib2', size: data.length, baseUrl: 'http://data.example.org/' });
    expect(m.identity.method).toBe('sha512');
    expect(Buffer.from(m.identity.value, 'base64')).toHaveLength(64);
    expect(parseV03Time(m.mtime!)).toBe(Math.floor((await stat(path)).mtimeMs));
    if (m.zsync?.kind !== 'inline') throw new Error('expected an inline signature');
    const cf = parseControlFile(m.zsync.bytes);
    expect(cf.length).toBe(data.length);
    expect(cf.urls).toEqual(['field.grib2']);
    // The default budget keeps the base64 signature within the 64 KiB inline limit.
    expect(Math.ceil(m.zsync.bytes.length / 3) * 4).toBeLessThanOrEqual(64 << 10);
  });

  it('sends no signature below the threshold, and a reference with the .zsync beside the file above the inline limit', async () => {
    const small = join(tmp.path, 'small.txt');
    await writeFile(small, 'tiny');
    expect((await buildFileMessage({ path: small, root: tmp.path, baseUrl: 'http://h/' })).message.zsync).toBeUndefined();

    const big = join(tmp.path, 'big.bin');
    await writeFile(big, seededBytes(2 << 20, 1));
    const built = await buildFileMessage({ path: big, root: tmp.path, baseUrl: 'http://h/', blockSize: 1024, inlineLimit: 4096, engine: 'js' });
    expect(built.signature).toBe('reference');
    expect(built.message.zsync).toMatchObject({ kind: 'reference', retrievePath: 'big.bin.zsync' });
    const beside = await readFile(`${big}.zsync`);
    expect(parseControlFile(beside).blockSize).toBe(1024);
    const text = JSON.parse(renderAnnouncement(built.message)) as { zsync: { size: number; identity: { method: string } } };
    expect(text.zsync.size).toBe(beside.length);
    expect(text.zsync.identity.method).toBe('sha512');
  });

  it('refuses files outside --root', async () => {
    await writeFile(join(tmp.path, 'x'), 'x');
    expect(() => relPathOf(join(tmp.path, 'sub'), join(tmp.path, 'x'))).toThrow(/not inside --root/);
  });
});

const SHA512 = createHash('sha512').update('abc').digest('base64');
const MD5 = createHash('md5').update('abc').digest('base64');

describe('checkMessage', () => {
  const base = () => parseAnnouncement(JSON.stringify({ pubTime: '20261124T000000', baseUrl: 'http://h/', relPath: 'a/b.txt', size: 3, identity: { method: 'sha512', value: SHA512 } }));

  it('accepts a plain message and v03 removals', () => {
    expect(checkMessage(base())).toEqual({});
    const rm = buildRemoveMessage('/srv', '/srv/a/b.txt', 'http://h/');
    expect(rm.fileOp).toEqual({ remove: '' });
    expect(checkMessage(parseAnnouncement(renderAnnouncement(rm)))).toEqual({});
  });

  it.each([
    ['/etc/passwd', /absolute/],
    ['a/../../x', /"\.\."/],
    ['..', /"\.\."/],
    ['C:/x', /absolute/],
    ['a\\b', /plain \/ path/],
    ['./', /names no file/],
  ])('refuses relPath %s', (relPath, why) => {
    expect(() => checkMessage({ ...base(), relPath })).toThrow(why);
  });

  it('allows http, https and sftp by default, file: only on request', () => {
    for (const baseUrl of ['https://h/', 'sftp://u@h:22/data/']) expect(() => checkMessage({ ...base(), baseUrl })).not.toThrow();
    expect(() => checkMessage({ ...base(), baseUrl: 'file:///srv/' })).toThrow(/--allow-file/);
    expect(() => checkMessage({ ...base(), baseUrl: 'file:///srv/' }, { schemes: ['file'] })).not.toThrow();
    expect(() => checkMessage({ ...base(), baseUrl: 'gopher://h/' })).toThrow(/gopher: scheme is not allowed/);
  });

  it('never refuses a message for its rename, but maps no old name from outside the tree', () => {
    // The subscriber then fetches the new name and leaves whatever the old name is alone.
    expect(() => checkMessage({ ...base(), fileOp: { rename: '../../etc/shadow' } })).not.toThrow();
    expect(renameSourceOf({ ...base(), fileOp: { rename: '../../etc/shadow' } })).toEqual({ why: expect.stringMatching(/fileOp.rename.*\.\./) });
    expect(renameSourceOf({ ...base(), fileOp: { rename: '/etc/shadow' } })).toEqual({ why: expect.stringMatching(/neither baseUrl's path nor --rename-strip/) });
  });

  it("maps sr3's absolute old names by baseUrl's path or --rename-strip, zpump's relative ones as they are", () => {
    expect(renameSourceOf({ ...base(), fileOp: { rename: 'obs/a.bin' } })).toEqual({ relPath: 'obs/a.bin' });
    expect(renameSourceOf({ ...base(), baseUrl: 'file:///srv/pub', fileOp: { rename: '/srv/pub/obs/a.bin' } })).toEqual({ relPath: 'obs/a.bin' });
    expect(renameSourceOf({ ...base(), baseUrl: 'sftp://h//srv/pub/', fileOp: { rename: '/srv/pub/obs/a.bin' } })).toEqual({ relPath: 'obs/a.bin' });
    expect(renameSourceOf({ ...base(), baseUrl: 'http://h', fileOp: { rename: '/srv/pub/obs/a.bin' } }, '/srv/pub/')).toEqual({ relPath: 'obs/a.bin' });
    expect(renameSourceOf({ ...base(), baseUrl: 'http://h/srv/pubx', fileOp: { rename: '/srv/pub/obs/a.bin' } })).toHaveProperty('why');
  });

  it.each([
    ['.keep.txt.zpump-lock'],
    ['d/.keep.txt.zpump-lock'],
    ['.zpump/rejected/x'],
    ['d/.zpump/x'],
    ['a.zpump-tmp'],
    ['.a.txt.0123abcd.zpump-tmp.part'],
  ])("refuses zpump's own name %s as relPath, and maps no rename's source to it", (name) => {
    expect(() => checkMessage({ ...base(), relPath: name })).toThrow(expect.objectContaining({ code: 'E_UNSAFE_PATH' }));
    expect(renameSourceOf({ ...base(), fileOp: { rename: name } })).toEqual({ why: expect.stringMatching(/own files/) });
  });

  it('checks md5 and sha512 identities, refuses none and unknown methods unless unverified files are accepted', () => {
    expect(() => checkMessage({ ...base(), identity: { method: 'md5', value: MD5 } })).not.toThrow();
    expect(() => checkMessage({ ...base(), identity: { method: 'MD5', value: MD5 } })).not.toThrow();
    expect(() => checkMessage({ ...base(), identity: { method: 'md5', value: SHA512 } })).toThrow(/16-byte digest/);
    expect(() => checkMessage({ ...base(), identity: { method: 'sha512', value: 'x' } })).toThrow(/64-byte digest/);
    for (const method of ['none', 'arbitrary', 'sha256']) {
      expect(() => checkMessage({ ...base(), identity: { method, value: '' } })).toThrow(/--accept-unverified/);
      expect(() => checkMessage({ ...base(), identity: { method, value: '' } }, { acceptUnverified: true })).not.toThrow();
    }
  });

  it('refuses times that do not parse: pubTime, mtime, and a removal with a garbage pubTime', () => {
    for (const t of ['garbage', '20261324T000000', '20261124T250000', '2026-11-24T00:00:00Z', '19691231T235959']) {
      expect(() => checkMessage({ ...base(), pubTime: t })).toThrow(/pubTime .* is not a v03 time/);
      expect(() => checkMessage({ ...base(), mtime: t })).toThrow(/mtime .* is not a v03 time/);
    }
    const rm = { ...parseAnnouncement(renderAnnouncement(buildRemoveMessage('/srv', '/srv/a/b.txt', 'http://h/'))), pubTime: 'yesterday' };
    expect(() => checkMessage(rm)).toThrow(/pubTime/);
    expect(() => checkMessage({ ...base(), mtime: '99991231T235959' })).not.toThrow(); // far future parses: clamped when applied
  });

  it('sends every URL through the one policy: retrievePath and zsync.retrievePath stay under baseUrl', () => {
    const ref = (retrievePath: string, size = 100) => ({ ...base(), zsync: { kind: 'reference' as const, retrievePath, size } });
    expect(() => checkMessage(ref('a/b.txt.zsync'))).not.toThrow();
    expect(() => checkMessage(ref('file:///etc/passwd'))).toThrow(/file: scheme is not allowed/);
    expect(() => checkMessage(ref('file:///etc/passwd'), { schemes: ['http', 'file'] })).toThrow(/not under baseUrl/);
    const pub = (retrievePath: string) => ({ ...ref(retrievePath), baseUrl: 'http://h/pub/' });
    expect(() => checkMessage(pub('%2e%2e/%2e%2e/x.zsync'))).toThrow(/hides a parent folder/);
    expect(() => checkMessage(pub('a/..%2F..%2Fx.zsync'))).toThrow(/hides a parent folder/);
    expect(() => checkMessage(pub('http://h/pub/%2e%2e/x.zsync'))).toThrow(/not under baseUrl/);
    expect(() => checkMessage(pub('http://h/pub/a%2F..%2F..%2Fx'))).toThrow(/escapes its folder/);
    expect(() => checkMessage(pub('http://h/pub/a/b.txt.zsync'))).not.toThrow();
    expect(() => checkMessage(ref('http://elsewhere/x.zsync'))).toThrow(/not under baseUrl/);
    expect(() => checkMessage(ref('a.zsync', 2 ** 40))).toThrow(/zsync.size is \d+ bytes, more than/);
    expect(() => checkMessage({ ...base(), retrievePath: 'http://other/x' })).toThrow(/not under baseUrl/);
  });
});

describe('localPathFor', () => {
  it('resolves inside --dir and refuses symlinked escapes', async () => {
    const root = join(tmp.path, 'root');
    const outside = join(tmp.path, 'outside');
    await mkdir(join(root, 'ok'), { recursive: true });
    await mkdir(outside);
    await symlink(outside, join(root, 'ok', 'escape'));
    await symlink(join(outside, 'file'), join(root, 'linkfile'));
    expect(await localPathFor(root, 'ok/new/deeper/f.txt')).toBe(join(root, 'ok/new/deeper/f.txt'));
    await expect(localPathFor(root, 'ok/escape/f.txt')).rejects.toThrow(/symbolic link/);
    await expect(localPathFor(root, 'ok/escape/a/b/f.txt')).rejects.toThrow(/symbolic link/);
    await expect(localPathFor(root, 'linkfile')).rejects.toThrow(/symbolic link/);
    await expect(localPathFor(root, 'ok')).rejects.toThrow(/directory/);
    await expect(localPathFor(root, 'ok/.f.txt.zpump-lock')).rejects.toThrow(/own files/);
  });

  it('re-checks a resolved path: a folder swapped for a symbolic link is refused before the write', async () => {
    const root = join(tmp.path, 'root');
    const outside = join(tmp.path, 'outside');
    await mkdir(join(root, 'd'), { recursive: true });
    await mkdir(outside);
    const target = await localPathFor(root, 'd/a.txt');
    await recheckLocalPath(root, target);
    await rm(join(root, 'd'), { recursive: true });
    await symlink(outside, join(root, 'd'));
    await expect(recheckLocalPath(root, target)).rejects.toThrow(expect.objectContaining({ code: 'E_UNSAFE_PATH' }));
  });
});

describe('bus addresses', () => {
  it('routes by the directories of relPath, as v03 subscribers expect', () => {
    expect(routingKeyOf('model/run12/field.grib2')).toBe('v03.model.run12');
    expect(routingKeyOf('top.txt')).toBe('v03');
    expect(topicOf('xpublic', 'model/run12/field.grib2')).toBe('xpublic/v03/model/run12');
    expect(topicOf('xpublic', 'top.txt')).toBe('xpublic/v03');
  });
});
