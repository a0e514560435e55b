// JSON Schemas (draft-07, checked by ajv) with Kazoo's field rules for the fields Lamplighter keeps
// (applications/crossbar/priv/couchdb/schemas/{accounts,users,devices,api_auth,user_auth}.json). Documents allow
// other fields, stored as given, exactly where Kazoo's schemas do; api_auth forbids them as Kazoo's does.

/** A Kazoo document id: 32 lower-case hex characters. */
export const ID_PATTERN = '^[0-9a-f]{32}$';
/** Extensions and presence ids: digits, letters and `* + _ - .` (park slots `*3101`, voicemail `*981001`). */
export const EXTENSION_PATTERN = '^[A-Za-z0-9*+_.\\-]{1,64}$';
/** Kazoo's realm rule (accounts.json). */
export const REALM_PATTERN = '^[.\\w-]+$';
/** A presence id, optionally with `@realm` (the realm part is ignored: presentities live in the account realm). */
export const PRESENCE_ID_PATTERN = '^[A-Za-z0-9*+_.\\-]{1,64}(@[.\\w-]+)?$';

const presenceId = { type: 'string', minLength: 1, maxLength: 128, pattern: PRESENCE_ID_PATTERN, description: 'Static presence id (used instead of the SIP username)' };
const enabled = { type: 'boolean', default: true };

export const accountSchema = {
  $id: 'accounts',
  type: 'object',
  required: ['name', 'realm'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128, description: 'A friendly name for the account' },
    realm: { type: 'string', minLength: 4, maxLength: 253, pattern: REALM_PATTERN, description: 'The SIP realm (domain) of the account, unique' },
    enabled,
    language: { type: 'string' },
    timezone: { type: 'string', minLength: 5, maxLength: 32 },
  },
};

export const userSchema = {
  $id: 'users',
  type: 'object',
  required: ['first_name', 'last_name'],
  properties: {
    first_name: { type: 'string', minLength: 1, maxLength: 128 },
    last_name: { type: 'string', minLength: 1, maxLength: 128 },
    username: { type: 'string', minLength: 1, maxLength: 256 },
    password: { type: 'string', minLength: 1, maxLength: 256, description: 'Write-only; stored only as digests' },
    presence_id: presenceId,
    enabled,
    email: { type: 'string', format: 'email', maxLength: 254 },
    priv_level: { type: 'string', enum: ['user', 'admin'], default: 'user' },
  },
};

export const deviceSchema = {
  $id: 'devices',
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    owner_id: { type: 'string', minLength: 32, maxLength: 32, pattern: ID_PATTERN, description: 'The user that owns the device' },
    presence_id: presenceId,
    enabled,
    device_type: { type: 'string' },
    sip: {
      type: 'object',
      properties: {
        username: { type: 'string', minLength: 2, maxLength: 32, description: 'SIP authentication username' },
        password: { type: 'string', minLength: 5, maxLength: 32, description: 'SIP authentication password; write-only, stored only as HA1 digests' },
        realm: { type: 'string', minLength: 4, maxLength: 253, pattern: REALM_PATTERN, description: 'Overrides the account realm; rarely necessary' },
        method: { type: 'string', enum: ['password', 'ip'], default: 'password' },
        ip: { type: 'string', format: 'ip', description: 'Source address for sip.method "ip"' },
      },
    },
  },
};

export const apiAuthSchema = {
  $id: 'api_auth',
  type: 'object',
  additionalProperties: false,
  required: ['api_key'],
  properties: { api_key: { type: 'string', minLength: 64, maxLength: 64, description: "The account's API key" } },
};

export const userAuthSchema = {
  $id: 'user_auth',
  type: 'object',
  required: ['credentials'],
  properties: {
    credentials: { type: 'string', minLength: 1, maxLength: 64, description: 'md5 (or sha1) of "username:password"' },
    method: { type: 'string', enum: ['md5', 'sha'], default: 'md5' },
    account_name: { type: 'string', minLength: 1, maxLength: 128 },
    account_realm: { type: 'string', minLength: 1, maxLength: 253 },
    realm: { type: 'string', minLength: 1, maxLength: 253, description: 'Alias of account_realm' },
    phone_number: { type: 'string', minLength: 1, maxLength: 64 },
  },
};

export const presenceActionSchema = {
  $id: 'presence_action',
  type: 'object',
  properties: {
    action: { type: 'string', enum: ['reset', 'set'] },
    state: { type: 'string', enum: ['confirmed', 'early', 'terminated'] },
    reset: { type: 'boolean', description: 'Deprecated (Kazoo 4.0): true means action "reset"' },
  },
};

/** Paths whose values never appear in an error body or a log line. */
export const SECRET_PATHS = new Set(['password', 'sip.password', 'api_key', 'credentials']);
