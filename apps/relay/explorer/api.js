// The relay's public JSON API and its server-sent events, from the same origin.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, signal) {
  const res = await fetch(path, { headers: { accept: "application/json" }, signal });
  if (!res.ok) {
    let code = `HTTP_${res.status}`;
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body?.error) ({ code, message } = body.error);
    } catch {}
    throw new ApiError(res.status, code, message);
  }
  return res.json();
}

/**
 * Follows a server-sent event stream read with fetch (so a 404 is seen and answered): the first
 * URL that does not answer 404 is kept. Reconnects after `retry:` (or 2 s) with Last-Event-ID,
 * until `signal` aborts or the server ends a stream of a finished block (`onEnd` says whether to
 * reconnect). `onState` hears "live", "reconnecting" or "off".
 */
export async function follow(urls, { onEvent, onState, onEnd, signal }) {
  let lastId = null;
  let retryMs = 2000;
  let chosen = null;
  while (!signal.aborted) {
    try {
      const candidates = chosen ? [chosen] : urls;
      let res = null;
      for (const url of candidates) {
        const headers = { accept: "text/event-stream" };
        if (lastId !== null) headers["last-event-id"] = lastId;
        const r = await fetch(url, { headers, signal });
        if (r.status === 404 && !chosen) {
          await r.body?.cancel();
          continue;
        }
        res = r;
        chosen = url;
        break;
      }
      if (!res) {
        onState?.("off");
        return;
      }
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        throw new Error(`stream answered ${res.status}`);
      }
      onState?.("live");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let event = "message";
      let data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl).replace(/\r$/, "");
          buffer = buffer.slice(nl + 1);
          if (line === "") {
            if (data.length > 0) {
              let parsed = null;
              try {
                parsed = JSON.parse(data.join("\n"));
              } catch {}
              if (parsed !== null) onEvent(event, parsed);
            }
            event = "message";
            data = [];
          } else if (line.startsWith(":")) {
            // keepalive comment
          } else {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event = val;
            else if (field === "data") data.push(val);
            else if (field === "id") lastId = val;
            else if (field === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
          }
        }
      }
      if (onEnd && !onEnd()) {
        onState?.("off");
        return;
      }
    } catch {
      if (signal.aborted) return;
    }
    onState?.("reconnecting");
    await new Promise((r) => setTimeout(r, retryMs));
  }
}
