/**
 * `freshness.maxConnectionAge`: an attested connection is trusted for a bounded time. Once it is
 * that old it is closed after its current response (idle ones at once), so the next request opens
 * a new connection, which is attested again. This module only keeps the clock per socket; the
 * agent, the dispatcher and `ratls connect` decide what "after its current response" means for them.
 */
import type { Socket } from 'node:net';

interface Entry {
  deadline: number;
  timer: NodeJS.Timeout | undefined;
}

/** Attestation times of sockets, and a timer per socket for when it reaches the limit. */
export class ConnectionAges {
  private readonly entries = new WeakMap<Socket, Entry>();

  /** @param maxAgeSeconds 0 = no limit */
  constructor(readonly maxAgeSeconds: number) {}

  get enabled(): boolean {
    return this.maxAgeSeconds > 0;
  }

  /**
   * Starts the clock of a socket that just passed attestation; `onExpiry` runs once when it is
   * `maxAgeSeconds` old (never after it closed). The timer does not keep the process alive.
   */
  start(socket: Socket, onExpiry: () => void): void {
    if (!this.enabled || this.entries.has(socket)) return;
    const ms = this.maxAgeSeconds * 1000;
    const entry: Entry = { deadline: Date.now() + ms, timer: undefined };
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (!socket.destroyed) onExpiry();
    }, ms);
    entry.timer.unref();
    this.entries.set(socket, entry);
    socket.once('close', () => clearTimeout(entry.timer));
  }

  /** True once the socket is older than the limit (false for sockets this instance never saw). */
  expired(socket: Socket): boolean {
    const e = this.entries.get(socket);
    return e !== undefined && Date.now() >= e.deadline;
  }

  /** Milliseconds until the socket reaches the limit (Infinity without a limit or for unknown sockets). */
  remainingMs(socket: Socket): number {
    const e = this.entries.get(socket);
    return e ? Math.max(0, e.deadline - Date.now()) : Infinity;
  }
}
