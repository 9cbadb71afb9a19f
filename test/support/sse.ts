// A server-sent event client for tests: opens a stream (optionally resuming with Last-Event-ID),
// keeps the raw text and the parsed events (with their ids) as they arrive.

export interface StreamEvent {
  id: string | undefined;
  event: string;
  data: unknown;
}

export interface OpenStream {
  status: number;
  headers: Headers;
  /** The response body as JSON when the relay refused the stream. */
  body: unknown;
  events: StreamEvent[];
  text(): string;
  /** Resolves when the stream ends (by the relay, or close()). */
  ended: Promise<void>;
  close(): void;
}

export async function openEventStream(
  url: string,
  options: { lastEventId?: string } = {},
): Promise<OpenStream> {
  const abort = new AbortController();
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId;
  const res = await fetch(url, { signal: abort.signal, headers });
  const events: StreamEvent[] = [];
  let text = "";
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) {
    const body = await res.json();
    return {
      status: res.status,
      headers: res.headers,
      body,
      events,
      text: () => "",
      ended: Promise.resolve(),
      close: () => {},
    };
  }
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const chunk = decoder.decode(value, { stream: true });
        text += chunk;
        buf += chunk;
        let end = buf.indexOf("\n\n");
        while (end >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = "message";
          let id: string | undefined;
          const data: string[] = [];
          for (const line of frame.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("id:")) id = line.slice(3).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) events.push({ id, event, data: JSON.parse(data.join("\n")) });
          end = buf.indexOf("\n\n");
        }
      }
    } catch {
      // closed by us
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    body: undefined,
    events,
    text: () => text,
    ended,
    close: () => abort.abort(),
  };
}
