// ajv validation with Kazoo's error shape: HTTP 400 "validation error", data.{field path}.{rule} = {message,
// target?, value?}, messages as kz_json_schema:error_to_jobj/2 writes them. Values of secret fields are left out.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { isIP } from 'node:net';
import { apiErrors, type FieldErrors } from './envelope.js';
import { accountSchema, apiAuthSchema, deviceSchema, presenceActionSchema, SECRET_PATHS, userAuthSchema, userSchema } from './schemas.js';

type AddFormats = (ajv: Ajv) => Ajv;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
addFormats(ajv);
ajv.addFormat('ip', (s: string) => isIP(s) !== 0);

export const SCHEMAS = {
  accounts: accountSchema,
  users: userSchema,
  devices: deviceSchema,
  api_auth: apiAuthSchema,
  user_auth: userAuthSchema,
  presence_action: presenceActionSchema,
} as const;
export type SchemaName = keyof typeof SCHEMAS;

const compiled = new Map<SchemaName, ValidateFunction>();
function validator(name: SchemaName): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    v = ajv.compile(SCHEMAS[name]);
    compiled.set(name, v);
  }
  return v;
}

function pathOf(instancePath: string): string[] {
  if (!instancePath) return [];
  return instancePath.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(data: unknown, path: string[]): unknown {
  let v = data;
  for (const k of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function toKazoo(e: ErrorObject, data: unknown): { path: string[]; rule: string; detail: Record<string, unknown> } {
  const path = pathOf(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: [...path, String(p.missingProperty)], rule: 'required', detail: { message: 'Field is required but missing' } };
    case 'additionalProperties':
      return { path: [...path, String(p.additionalProperty)], rule: 'additionalProperties', detail: { message: 'Strict checking of data is enabled; only include schema-defined properties' } };
    case 'minLength':
      return { path, rule: 'minLength', detail: { message: `String must be at least ${p.limit} characters`, target: p.limit } };
    case 'maxLength':
      return { path, rule: 'maxLength', detail: { message: `String must not be more than ${p.limit} characters`, target: p.limit } };
    case 'type': {
      const types = Array.isArray(p.type) ? (p.type as string[]).join(',') : String(p.type);
      return { path, rule: 'type', detail: { message: `Value did not match type(s): ${types}`, target: types } };
    }
    case 'enum':
      return { path, rule: 'enum', detail: { message: 'Value not found in enumerated list of values', target: p.allowedValues } };
    case 'pattern':
      return { path, rule: 'pattern', detail: { message: `Failed to match pattern '${p.pattern}'`, target: p.pattern } };
    case 'format':
      return { path, rule: 'format', detail: { message: 'Field is not in the correct format', format: p.format } };
    case 'minimum':
      return { path, rule: 'minimum', detail: { message: `Value must be at least ${p.limit}`, target: p.limit } };
    case 'maximum':
      return { path, rule: 'maximum', detail: { message: `Value must be at most ${p.limit}`, target: p.limit } };
    default:
      void data;
      return { path, rule: e.keyword, detail: { message: 'failed to validate' } };
  }
}

/** Kazoo's field errors for `data` against a schema; empty when it validates. */
export function schemaErrors(name: SchemaName, data: unknown): FieldErrors {
  const v = validator(name);
  if (v(data)) return {};
  const out: FieldErrors = {};
  for (const e of v.errors ?? []) {
    const { path, rule, detail } = toKazoo(e, data);
    const dotted = path.join('.');
    if (!['required', 'additionalProperties'].includes(rule) && !SECRET_PATHS.has(dotted)) {
      const value = valueAt(data, path);
      if (value === null || typeof value !== 'object') detail.value = value;
    }
    const key = path.map((s) => s.replace(/\./g, '%2E')).join('.') || 'data';
    (out[key] ??= {})[rule] = detail;
  }
  return out;
}

/** Throws Kazoo's 400 validation error unless `data` validates. */
export function validate(name: SchemaName, data: unknown): void {
  const errs = schemaErrors(name, data);
  if (Object.keys(errs).length > 0) throw apiErrors.validation(errs);
}
