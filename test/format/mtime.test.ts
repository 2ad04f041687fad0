import { describe, expect, it } from 'vitest';
import { formatMTime, parseMTime } from '../../src/format/mtime.js';

describe('MTime', () => {
  it('formats like zsyncmake: C-locale names, zero-padded day, +0000', () => {
    expect(formatMTime(Date.UTC(2020, 0, 2, 3, 4, 5) / 1000)).toBe('Thu, 02 Jan 2020 03:04:05 +0000');
  });

  it('parses as UTC, with or without weekday, honouring offsets', () => {
    const t = Date.UTC(2020, 0, 2, 3, 4, 5) / 1000;
    expect(parseMTime('Thu, 02 Jan 2020 03:04:05 +0000')).toBe(t);
    expect(parseMTime('2 Jan 2020 03:04:05 +0000')).toBe(t);
    expect(parseMTime('Thu, 02 Jan 2020 04:04:05 +0100')).toBe(t);
    expect(parseMTime('Thu, 02 Jan 2020 03:04:05 GMT')).toBe(t);
  });

  it('round-trips', () => {
    for (const t of [0, 1_600_000_000, 4_102_444_800]) expect(parseMTime(formatMTime(t))).toBe(t);
  });

  it('refuses what is not a date', () => {
    expect(parseMTime('yesterday')).toBeUndefined();
    expect(parseMTime('Thu, 02 Foo 2020 03:04:05 +0000')).toBeUndefined();
  });
});
