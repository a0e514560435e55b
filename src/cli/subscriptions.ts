// `lamplighter subscriptions list|reset`. Listing reads the database directly (read-only, safe while the server
// runs). A reset must send NOTIFYs from the node that holds the dialogs, so it goes through that server's API.
import type { Command } from 'commander';
import type { Db } from '../store/db.js';

interface Row {
  presentity: string; event: string; watcher_uri: string; transport: string; call_id: string;
  expires_at: number; node_id: string; last_notify_reply: number; last_notify_cseq: number;
}

export function registerSubscriptionCommands(program: Command, openDb: () => Db): void {
  const subs = program.command('subscriptions').description('live subscriptions');
  subs.command('list')
    .description('list the stored subscriptions (newest first)')
    .option('--domain <domain>', 'only presentities in this domain (account realm)')
    .option('--event <event>', 'dialog | presence | message-summary')
    .option('--limit <n>', 'at most this many rows', '1000')
    .option('--json', 'one JSON object per line')
    .action((o: { domain?: string; event?: string; limit: string; json?: boolean }) => {
      const db = openDb();
      const rows = db.prepare(`
        SELECT presentity, event, watcher_uri, transport, call_id, expires_at, node_id, last_notify_reply, last_notify_cseq
        FROM subscriptions
        WHERE (@domain IS NULL OR domain = @domain) AND (@event IS NULL OR event = @event)
        ORDER BY updated_at DESC LIMIT @limit`).all({ domain: o.domain ?? null, event: o.event ?? null, limit: Number(o.limit) || 1000 }) as Row[];
      db.close();
      const now = Date.now();
      if (o.json) {
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(`${'presentity'.padEnd(28)} ${'event'.padEnd(16)} ${'watcher'.padEnd(32)} ${'tr'.padEnd(4)} ${'left'.padStart(6)} ${'last'.padStart(4)}  node\n`);
      for (const r of rows) {
        const left = Math.max(0, Math.round((r.expires_at - now) / 1000));
        process.stdout.write(`${r.presentity.padEnd(28)} ${r.event.padEnd(16)} ${r.watcher_uri.padEnd(32)} ${r.transport.padEnd(4)} ${String(left).padStart(6)} ${String(r.last_notify_reply || '-').padStart(4)}  ${r.node_id}\n`);
      }
      process.stdout.write(`${rows.length} subscription(s)\n`);
    });

  subs.command('reset')
    .description('reset an extension\'s lamps through the running server (it sends the NOTIFYs)')
    .argument('<extension>', 'extension (presence id) in the account, e.g. 201 or *3101')
    .requiredOption('--account <id>', 'account id')
    .option('--api <url>', 'the server\'s API base URL', 'http://127.0.0.1:8000')
    .option('--api-key <key>', 'the account\'s API key (or env LAMPLIGHTER_API_KEY)')
    .action(async (extension: string, o: { account: string; api: string; apiKey?: string }) => {
      const apiKey = o.apiKey ?? process.env.LAMPLIGHTER_API_KEY;
      if (!apiKey) throw new Error('an API key is needed: --api-key or LAMPLIGHTER_API_KEY');
      const auth = await fetch(`${o.api}/v2/api_auth`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { api_key: apiKey } }) });
      const authBody = await auth.json() as { auth_token?: string; message?: string };
      if (!auth.ok || !authBody.auth_token) throw new Error(`authentication failed: ${auth.status} ${authBody.message ?? ''}`);
      const res = await fetch(`${o.api}/v2/accounts/${encodeURIComponent(o.account)}/presence/${encodeURIComponent(extension)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-auth-token': authBody.auth_token },
        body: JSON.stringify({ data: { action: 'reset' } }),
      });
      const text = await res.text();
      process.stdout.write(`${res.status} ${text}\n`);
      if (!res.ok) process.exitCode = 1;
    });
}
