// Shared pieces of the issue-2 audit tests: black-box helpers over real loopback sockets and the database file.
// They only read the server's database (never write it) and only talk to 127.0.0.1.
import Database from 'better-sqlite3';
import { RawPeer, type RawMessage } from '../helpers/raw-sip.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rows from the server's database, opened read-only for one query (WAL lets us read while it writes). */
export function dbRows(file: string, sql: string, ...args: unknown[]): any[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try { return db.prepare(sql).all(...args); } finally { db.close(); }
}

export async function until<T>(fn: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(15);
  }
}

export const cseqOf = (m: RawMessage) => Number(m.get('cseq')!.split(/\s+/)[0]);
export const toTagOf = (m: RawMessage) => /;\s*tag=([^;>\s,]+)/i.exec(m.get('to')!)![1]!;
export function versionOf(m: RawMessage): number {
  const v = /<dialog-info[^>]*\sversion="(\d+)"/.exec(m.body);
  if (!v) throw new Error(`no dialog-info version in: ${m.body}`);
  return Number(v[1]);
}
/** Seconds in `active;expires=N`, or NaN. */
export function expiresParam(m: RawMessage): number {
  const v = /^active\s*;\s*expires=(\d+)/i.exec(m.get('subscription-state') ?? '');
  return v ? Number(v[1]) : NaN;
}

export const isNotify = (callId: string) => (m: RawMessage) => m.method === 'NOTIFY' && m.get('call-id') === callId;
export const notifies = (p: RawPeer, callId: string) => p.received.filter(isNotify(callId));
/** Distinct NOTIFYs of a dialog by CSeq (UDP retransmissions collapse into one). */
export function distinctNotifies(p: RawPeer, callId: string): RawMessage[] {
  const seen = new Map<number, RawMessage>();
  for (const m of notifies(p, callId)) if (!seen.has(cseqOf(m))) seen.set(cseqOf(m), m);
  return [...seen.values()];
}

export class Peers {
  private readonly list: RawPeer[] = [];
  async open(port: number, transport: 'udp' | 'tcp' = 'udp', answer?: (m: RawMessage) => number | null): Promise<RawPeer> {
    const p = await RawPeer.open({ port }, { transport, ...(answer ? { answer } : {}) });
    this.list.push(p);
    return p;
  }
  closeAll(): void { for (const p of this.list.splice(0)) p.close(); }
}

let counter = 0;
/** A presentity user part unique within the run (tests share one server). */
export function uniqueUser(prefix = '7'): string {
  counter++;
  return `${prefix}${process.pid % 1000}${counter}${Math.floor(Math.random() * 1000)}`;
}
