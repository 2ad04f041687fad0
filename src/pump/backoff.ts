// Waiting between attempts to reach a broker: 250 ms doubling up to 10 s.

export function backoffMs(attempt: number): number {
  return Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
}
