// zsyncmake writes MTime as RFC 2822 in UTC with C-locale names: "Thu, 02 Jan 2020 03:04:05 +0000".

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const two = (n: number): string => String(n).padStart(2, '0');

/** Whole seconds since the epoch → zsync's MTime string. */
export function formatMTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  return (
    `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
  );
}

const RFC822 = /^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s*(?:([+-])(\d{2})(\d{2})|GMT|UTC|Z)?$/;

/** zsync's MTime string → seconds since the epoch (as UTC, unlike 0.6.2 which used local time); undefined if unparsable. */
export function parseMTime(text: string): number | undefined {
  const m = RFC822.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS.findIndex((name) => name.toLowerCase() === m[2]!.toLowerCase());
  if (month < 0) return undefined;
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  if (!Number.isFinite(utc)) return undefined;
  const offset = m[7] ? (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 3600 + Number(m[9]) * 60) : 0;
  return utc - offset;
}
