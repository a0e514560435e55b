// Every child process the bench starts (servers, sipp), so an interrupted run ends exactly those, by PID.
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let aborting = false;

/** After an interrupt nothing new may start (a step in progress would otherwise start the next server). */
export function abortAll(): void {
  aborting = true;
  killTracked();
}

export function checkNotAborted(): void {
  if (aborting) throw new Error('interrupted');
}

export function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

export function killTracked(): void {
  for (const c of live) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
