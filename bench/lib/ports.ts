// Free ports on 127.0.0.1 that are free for UDP and TCP at once (the server listens on both with one number).
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

function tcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

/** A port free on both UDP and TCP, never the same one twice in this process. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await tcpPort();
    if (handedOut.has(p)) continue;
    if (await udpFree(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error('no free port pair found on 127.0.0.1');
}
