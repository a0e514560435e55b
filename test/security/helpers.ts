// Helpers for the end-to-end security tests: a UDP/TCP SIP peer that can bind to any loopback source address
// (so an "attacker" on 127.0.0.66 and a real watcher on 127.0.0.1 are different sources to the server while all
// traffic still goes to 127.0.0.1), digest answers computed here with node:crypto, and directory seeding.
import { createHash, randomBytes } from 'node:crypto';
import { parseRaw, randomTag, RawPeer, type RawMessage } from '../helpers/raw-sip.js';
import { Directory } from '../../src/store/directory.js';
import type { Db } from '../../src/store/db.js';

export { parseRaw, randomTag, type RawMessage };

/** The raw peer of the other tests: `LoopPeer.open(port, { localAddress: '127.0.0.66' })` binds another source. */
export { RawPeer as LoopPeer };

export interface Challenge { realm: string; nonce: string; algorithm: string; qop?: string; stale?: string; [k: string]: string | undefined }

export function parseChallenges(m: RawMessage): Challenge[] {
  return m.all('www-authenticate').map((v) => {
    const out: Record<string, string> = {};
    for (const x of v.replace(/^Digest\s+/i, '').matchAll(/([\w-]+)=("((?:[^"\\]|\\.)*)"|[^,\s]+)/g)) out[x[1]!.toLowerCase()] = x[3] ?? x[2]!;
    return out as Challenge;
  });
}

export interface DigestAnswer {
  algorithm: 'MD5' | 'SHA-256';
  username: string;
  realm: string;
  password: string;
  nonce: string;
  uri: string;
  method: string;
  nc?: number;
  cnonce?: string;
}

/** RFC 7616 §3.4.1, qop=auth: computed here, independently of the server's digest code. */
export function authorization(a: DigestAnswer): string {
  const f = a.algorithm === 'MD5' ? 'md5' : 'sha256';
  const H = (s: string) => createHash(f).update(s).digest('hex');
  const nc = (a.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = a.cnonce ?? randomBytes(8).toString('hex');
  const response = H(`${H(`${a.username}:${a.realm}:${a.password}`)}:${a.nonce}:${nc}:${cnonce}:auth:${H(`${a.method}:${a.uri}`)}`);
  return `Digest username="${a.username}", realm="${a.realm}", nonce="${a.nonce}", uri="${a.uri}", response="${response}", `
    + `algorithm=${a.algorithm}, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}

export interface SubscribeSpec {
  user: string;
  domain: string;
  watcher: string;
  watcherDomain?: string;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  cseq?: number;
  expires?: number;
  requestUri?: string;
  event?: string;
  extra?: string[];
  fromDisplay?: string;
}

export function subscribe(peer: RawPeer, s: SubscribeSpec): string {
  const event = s.event ?? 'dialog';
  return [
    `SUBSCRIBE ${s.requestUri ?? `sip:${s.user}@${s.domain}`} SIP/2.0`,
    `Via: ${peer.via()}`,
    'Max-Forwards: 70',
    `From: ${s.fromDisplay ? `"${s.fromDisplay}" ` : ''}<sip:${s.watcher}@${s.watcherDomain ?? s.domain}>;tag=${s.fromTag ?? randomTag()}`,
    `To: <sip:${s.user}@${s.domain}>${s.toTag ? `;tag=${s.toTag}` : ''}`,
    `Call-ID: ${s.callId ?? `${randomTag()}@${peer.localAddress}`}`,
    `CSeq: ${s.cseq ?? 1} SUBSCRIBE`,
    `Contact: ${peer.contact(s.watcher)}`,
    `Event: ${event}`,
    ...(event === 'dialog' ? ['Accept: application/dialog-info+xml'] : []),
    `Expires: ${s.expires ?? 600}`,
    ...(s.extra ?? []),
    'Content-Length: 0',
    '', '',
  ].join('\r\n');
}

export function publish(peer: RawPeer, p: { user: string; domain: string; body: string; contentType?: string; event?: string; expires?: number; extra?: string[]; callId?: string; cseq?: number }): string {
  return [
    `PUBLISH sip:${p.user}@${p.domain} SIP/2.0`,
    `Via: ${peer.via()}`,
    'Max-Forwards: 70',
    `From: <sip:pbx@${p.domain}>;tag=${randomTag()}`,
    `To: <sip:${p.user}@${p.domain}>`,
    `Call-ID: ${p.callId ?? `${randomTag()}@pbx`}`,
    `CSeq: ${p.cseq ?? 1} PUBLISH`,
    `Event: ${p.event ?? 'dialog'}`,
    `Expires: ${p.expires ?? 600}`,
    `Content-Type: ${p.contentType ?? 'application/dialog-info+xml'}`,
    ...(p.extra ?? []),
    `Content-Length: ${Buffer.byteLength(p.body)}`,
    '',
    p.body,
  ].join('\r\n');
}

/** Insert the same header lines before Content-Length and bump CSeq (a retry after a 401, RFC 3261 §22.2). */
export function withAuth(text: string, auth: string, cseq: number): string {
  return text
    .replace(/^Via: SIP\/2\.0\/(\w+) ([^;]+);rport;branch=\S+/m, (_m, t, h) => `Via: SIP/2.0/${t} ${h};rport;branch=z9hG4bK${randomBytes(8).toString('hex')}`)
    .replace(/^CSeq: \d+ (\w+)/m, (_m, meth) => `CSeq: ${cseq} ${meth}`)
    .replace(/^Content-Length:/m, `Authorization: ${auth}\r\nContent-Length:`);
}

/** Send `text`, answer the 401 with credentials (first offered challenge of `algorithm`), return the final answer. */
export async function authenticated(peer: RawPeer, text: string, creds: { username: string; password: string; algorithm?: 'MD5' | 'SHA-256'; realm?: string }): Promise<{ first: RawMessage; final: RawMessage; challenge: Challenge }> {
  const first = await peer.request(text);
  if (first.status !== 401) throw new Error(`expected a 401 challenge, got ${first.startLine}`);
  const alg = creds.algorithm ?? 'MD5';
  const ch = parseChallenges(first).find((c) => c.algorithm === alg);
  if (!ch) throw new Error(`no ${alg} challenge in ${first.text}`);
  const req = parseRaw(text);
  const [method, uri] = req.startLine.split(' ') as [string, string];
  const cseq = Number(req.get('cseq')!.split(' ')[0]) + 1;
  const auth = authorization({ algorithm: alg, username: creds.username, realm: creds.realm ?? ch.realm, password: creds.password, nonce: ch.nonce, uri, method });
  const final = await peer.request(withAuth(text, auth, cseq));
  return { first, final, challenge: ch };
}

export interface SeedDevice { username: string; password?: string; method?: 'password' | 'ip'; ip?: string }

/** Accounts with devices, written through the directory (the same code the API uses). */
export function seed(db: Db, accounts: Array<{ name: string; realm: string; devices: SeedDevice[] }>): Record<string, string> {
  const dir = new Directory(db);
  const ids: Record<string, string> = {};
  for (const a of accounts) {
    const acct = dir.createAccount({ name: a.name, realm: a.realm }, null);
    ids[a.realm] = acct.id;
    for (const d of a.devices) {
      dir.createDevice(acct.id, {
        name: `phone-${d.username}`,
        sip: { username: d.username, method: d.method ?? 'password', ...(d.ip ? { ip: d.ip } : {}) },
      }, d.method === 'ip' ? undefined : d.password);
    }
  }
  return ids;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
