// Writing server-sent events to one client. A client that does not read keeps its socket buffer
// full; past `maxBufferBytes` of unsent output the client is dropped (its socket destroyed)
// instead of buffering without limit. A client of GET /v1/events resumes with Last-Event-ID.

/** The part of a writable stream (an http.ServerResponse) an event stream needs. */
export interface SseOutput {
  write(chunk: string): boolean;
  readonly writableLength: number;
  readonly destroyed: boolean;
  destroy(): void;
}

export class SseWriter {
  /** True once the client was dropped for not reading. */
  dropped = false;

  constructor(
    private readonly out: SseOutput,
    /** 0 = no bound. */
    private readonly maxBufferBytes: number,
  ) {}

  get open(): boolean {
    return !this.out.destroyed && !this.dropped;
  }

  /** Writes raw stream text; false if the client is gone or was just dropped. */
  write(text: string): boolean {
    if (!this.open) return false;
    this.out.write(text);
    if (this.maxBufferBytes > 0 && this.out.writableLength > this.maxBufferBytes) {
      this.dropped = true;
      this.out.destroy();
      return false;
    }
    return true;
  }

  event(type: string, data: unknown, id?: string): boolean {
    const idLine = id === undefined ? "" : `id: ${id}\n`;
    return this.write(`${idLine}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  comment(text: string): boolean {
    return this.write(`: ${text}\n\n`);
  }

  retry(ms: number): boolean {
    return this.write(`retry: ${ms}\n\n`);
  }
}
