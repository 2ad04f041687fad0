#!/usr/bin/env node
// Turns vitest's JSON report into the one plain line CI reads: "N passed, M failed[, K skipped]".
// Exits 1 unless tests ran and all passed; a missing or unreadable report counts as a failure.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-report.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`test-summary: cannot read vitest report ${file}: ${e.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const n = (v) => (Number.isFinite(v) ? v : 0);
const passed = n(report.numPassedTests);
const skipped = n(report.numPendingTests) + n(report.numTodoTests);
const ok = n(report.numTotalTests) > 0 && report.success === true;
// A test file that fails to load (syntax error, a throw at collection such as a missing tool under CI)
// fails no test yet makes success false: count the failed files so the line never says "0 failed" on a red run.
let failed = n(report.numFailedTests);
if (!ok && failed === 0) failed = Math.max(1, n(report.numFailedTestSuites));

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
