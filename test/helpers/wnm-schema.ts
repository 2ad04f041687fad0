// The WIS2 Notification Message schema (WNM 1.1.0, JSON Schema 2020-12) from test/fixtures/wis2,
// compiled once with ajv: tests validate what zpump writes against the standard itself.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const FIXTURES = fileURLToPath(new URL('../fixtures/wis2/', import.meta.url));

// Both are CommonJS with a `default` beside module.exports; take whichever the loader hands over.
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as typeof Ajv2020Module.default;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as typeof addFormatsModule.default;

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validator = ajv.compile(JSON.parse(readFileSync(`${FIXTURES}wis2-notification-message-bundled.json`, 'utf8')) as object);

/** The schema's complaints about a message (empty when it validates). */
export function wnmSchemaErrors(message: unknown): string[] {
  return validator(message) ? [] : (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

export function wnmExample(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(`${FIXTURES}${name}`, 'utf8')) as Record<string, unknown>;
}
