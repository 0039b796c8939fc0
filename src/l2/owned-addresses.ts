// The addresses one responder (ARP or NDP) owns on its interface, and the burst of unsolicited
// announcements each newly owned address gets so neighbours move their entries at once. Shared by both
// responders: what differs is only the frame a round sends (gratuitous ARP, unsolicited NA).
import type { GratuitousBurst, Timers } from './arp-responder.js';

export interface OwnedAddressHooks {
  /**
   * Send one round of announcements for `ip`; false when nothing can be sent any more (no socket), which
   * ends the burst.
   */
  announce(ip: string): boolean;
  /** Called when an address becomes owned (before its first round) and when it stops being owned. */
  added?(ip: string): void;
  removed?(ip: string): void;
}

export class OwnedAddresses {
  private readonly owned = new Set<string>();
  private readonly bursts = new Map<string, unknown>();

  constructor(
    private readonly timers: Timers,
    private readonly burst: GratuitousBurst,
    private readonly hooks: OwnedAddressHooks,
  ) {}

  has(ip: string): boolean {
    return this.owned.has(ip);
  }

  sorted(): string[] {
    return [...this.owned].sort();
  }

  /** Replace the set: newly owned addresses get a burst, dropped ones go quiet at once. */
  set(next: ReadonlySet<string>): void {
    for (const ip of [...this.owned]) {
      if (next.has(ip)) continue;
      this.owned.delete(ip);
      this.cancelBurst(ip);
      this.hooks.removed?.(ip);
    }
    for (const ip of [...next].sort()) {
      if (this.owned.has(ip)) continue;
      this.owned.add(ip);
      this.hooks.added?.(ip);
      this.sendBurst(ip, this.burst.count);
    }
  }

  /** Forget everything (the responder stops) without the removed hook. */
  clear(): void {
    for (const handle of this.bursts.values()) this.timers.clearTimeout(handle);
    this.bursts.clear();
    this.owned.clear();
  }

  private cancelBurst(ip: string): void {
    const handle = this.bursts.get(ip);
    if (handle !== undefined) this.timers.clearTimeout(handle);
    this.bursts.delete(ip);
  }

  private sendBurst(ip: string, remaining: number): void {
    this.bursts.delete(ip);
    if (remaining <= 0 || !this.owned.has(ip) || !this.hooks.announce(ip)) return;
    if (remaining > 1) {
      this.bursts.set(
        ip,
        this.timers.setTimeout(() => this.sendBurst(ip, remaining - 1), this.burst.intervalMs),
      );
    }
  }
}

/** Send one frame, counting and reporting a failure instead of throwing. */
export function sendCounted(
  socket: { send(frame: Buffer): number } | null,
  frame: Buffer,
  counters: { sendErrors: number },
  onError: ((err: Error) => void) | undefined,
): boolean {
  try {
    socket?.send(frame);
    return true;
  } catch (e) {
    counters.sendErrors++;
    onError?.(e as Error);
    return false;
  }
}
