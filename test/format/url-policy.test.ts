import { describe, expect, it } from 'vitest';
import { ZpumpError } from '../../src/errors.js';
import { DEFAULT_SCHEMES, cappedSize, fetchableUrl } from '../../src/format/url-policy.js';

const rules = { schemes: DEFAULT_SCHEMES, baseUrl: 'http://h/pub/' };

describe('fetchableUrl', () => {
  it('resolves a message path under baseUrl, each segment a literal name', () => {
    expect(fetchableUrl('a b/c#d?.nc', rules)).toBe('http://h/pub/a%20b/c%23d%3F.nc');
    expect(fetchableUrl('/x/y', { ...rules, baseUrl: 'sftp://u@h:2222/srv' })).toBe('sftp://u@h:2222/srv/x/y');
    expect(fetchableUrl('a:b.nc', rules)).toBe('http://h/pub/a%3Ab.nc');
    expect(fetchableUrl('http://h/pub/z.zsync', rules)).toBe('http://h/pub/z.zsync');
  });

  it.each([
    ['../x', /leaves baseUrl's folder/],
    ['%2e%2e/x', /hides a parent folder/],
    ['%2E./x', /hides a parent folder/],
    ['a/..%2fx', /hides a parent folder/],
    ['file:///etc/passwd', /file: scheme is not allowed.*--allow-file/],
    ['http://h/other/x', /not under baseUrl/],
    ['http://h:81/pub/x', /not under baseUrl/],
    ['http://evil/pub/x', /not under baseUrl/],
    ['http://h/pub/a/%2e%2e/%2e%2e/x', /not under baseUrl/],
    ['http://h/pub/a%2f..%2f..%2fx', /escapes its folder/],
    ['http://h/pub/', /not under baseUrl/],
    ['', /names no file/],
  ])('refuses %s', (path, why) => {
    expect(() => fetchableUrl(path, rules)).toThrow(ZpumpError);
    expect(() => fetchableUrl(path, rules)).toThrow(why);
  });

  it('checks baseUrl itself, and absolute links without one (WIS2) by scheme and segments only', () => {
    expect(() => fetchableUrl('x', { ...rules, baseUrl: 'not a url' })).toThrow(/baseUrl "not a url" is not a URL/);
    expect(() => fetchableUrl('x', { ...rules, baseUrl: 'file:///srv/' })).toThrow(/--allow-file/);
    expect(fetchableUrl('x', { schemes: ['file'], baseUrl: 'file:///srv' })).toBe('file:///srv/x');
    expect(fetchableUrl('https://cache.example/data/x.grib2', { schemes: DEFAULT_SCHEMES })).toBe('https://cache.example/data/x.grib2');
    expect(() => fetchableUrl('https://cache.example/a%2F..%2Fb', { schemes: DEFAULT_SCHEMES })).toThrow(/escapes its folder/);
    expect(() => fetchableUrl('relative/x', { schemes: DEFAULT_SCHEMES })).toThrow(/no baseUrl/);
  });
});

describe('cappedSize', () => {
  it('takes whole sizes up to the cap, and nothing else', () => {
    expect(cappedSize(10, 100, 'zsync.size')).toBe(10);
    for (const bad of [-1, 1.5, '10', 2 ** 60, Number.NaN]) expect(() => cappedSize(bad, 100, 'zsync.size')).toThrow(ZpumpError);
    expect(() => cappedSize(101, 100, 'zsync.size')).toThrow(/zsync.size is 101 bytes, more than/);
  });
});
