// A shell in the container: xterm.js over `/ws/containers/{id}/exec`. Output arrives as
// binary frames, keystrokes leave as binary frames, a resize is a text frame. An ended
// session is not reopened on its own: the user starts a new one.
import { useEffect, useRef, useState } from "react";
import { Terminal as XTerm } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import { paths } from "../../api/paths";
import { useWebSocket } from "../../hooks/useWebSocket";
import { SocketStatus } from "./SocketStatus";
import "./container.css";

export function Terminal({
  id,
  host,
  active = true,
  reason,
}: {
  id: string;
  host: string;
  active?: boolean;
  /** An admin's reason, for a container the platform protects (recorded with the session). */
  reason?: string;
}) {
  const elementRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<XTerm | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const sendRef = useRef<(data: string | Uint8Array | object) => boolean>(() => false);
  const [ready, setReady] = useState(false);
  const [started, setStarted] = useState<{ execId: string; command: string[] } | null>(null);
  /** The shell exited: its exit code (null when Docker did not tell). */
  const [ended, setEnded] = useState<{ exitCode: number | null } | null>(null);

  useEffect(() => {
    const element = elementRef.current;
    if (!element) return;
    const term = new XTerm({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      scrollback: 5000,
      // Also keeps a plain-text copy of the screen in the DOM (read by screen readers, and
      // by tests through innerText, without the cursor cell's trailing space).
      screenReaderMode: true,
      theme: { background: "#0b0f14", foreground: "#d8dee6", cursor: "#d8dee6", selectionBackground: "#3d8bfd55" },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(element);
    termRef.current = term;
    fitRef.current = fit;
    const fitNow = () => {
      // A hidden terminal has no size: fitting it would make it 1 column wide.
      if (element.clientWidth > 0 && element.clientHeight > 0) {
        try {
          fit.fit();
        } catch {
          // not rendered yet
        }
      }
    };
    fitNow();

    const encoder = new TextEncoder();
    const subscriptions = [
      term.onData((data) => sendRef.current(encoder.encode(data))),
      // Mouse reports in some modes: one byte per character.
      term.onBinary((data) => sendRef.current(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff))),
      term.onResize(({ cols, rows }) => sendRef.current({ type: "resize", cols, rows })),
    ];
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(fitNow);
    });
    observer.observe(element);
    setReady(true);
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      subscriptions.forEach((subscription) => subscription.dispose());
      term.dispose();
      termRef.current = null;
      fitRef.current = null;
      setReady(false);
    };
  }, []);

  const socket = useWebSocket(
    ready
      ? {
          path: paths.ws.exec(id),
          purpose: "container.exec",
          resourceId: id,
          // Asked at each connect: a new session starts at the terminal's current size.
          query: () => ({ host, cols: termRef.current?.cols ?? 80, rows: termRef.current?.rows ?? 24, reason }),
        }
      : null,
    {
      autoReconnect: false,
      onOpen: (send) => {
        setEnded(null);
        const term = termRef.current;
        if (term) send({ type: "resize", cols: term.cols, rows: term.rows });
      },
      onBinary: (data) => termRef.current?.write(data),
      onMessage: (message) => {
        if (message.type === "started") {
          setStarted({
            execId: String(message.exec_id ?? ""),
            command: Array.isArray(message.command) ? message.command.map(String) : [],
          });
          termRef.current?.focus();
        } else if (message.type === "exit") {
          const exitCode = typeof message.exit_code === "number" ? message.exit_code : null;
          setEnded({ exitCode });
          termRef.current?.write(`\r\n\x1b[2m[session ended${exitCode === null ? "" : ` (exit code ${exitCode})`}]\x1b[0m\r\n`);
        }
      },
    },
  );
  useEffect(() => {
    sendRef.current = socket.send;
  }, [socket.send]);

  // Shown again (tabs keep it mounted): fit to the space it now has.
  useEffect(() => {
    if (!active) return;
    const frame = requestAnimationFrame(() => {
      const element = elementRef.current;
      if (element && element.clientWidth > 0) {
        try {
          fitRef.current?.fit();
        } catch {
          // not rendered yet
        }
      }
      termRef.current?.focus();
    });
    return () => cancelAnimationFrame(frame);
  }, [active]);

  const newSession = () => {
    termRef.current?.reset();
    setStarted(null);
    setEnded(null);
    socket.reconnect();
  };

  const closed = socket.status === "closed";
  return (
    <div className="cd-terminal">
      <div className="cd-stream-status">
        <SocketStatus snapshot={socket} testId="terminal-status" />
        {started && !closed && (
          <span className="muted small" title={started.command.join(" ")}>
            exec {started.execId.slice(0, 12)}
          </span>
        )}
        {ended && (
          <span data-testid="terminal-ended">
            session ended{ended.exitCode === null ? "" : ` (exit code ${ended.exitCode})`}
          </span>
        )}
        {socket.error && closed && !ended && (
          <span className="cd-stream-error" role="alert" data-testid="terminal-error">
            {socket.error.message}
          </span>
        )}
        {closed && (
          <button type="button" onClick={newSession}>
            {ended ? "New session" : "Reconnect"}
          </button>
        )}
        {!closed && socket.status === "open" && (
          <button type="button" className="link" onClick={() => socket.disconnect()}>
            Disconnect
          </button>
        )}
      </div>
      <div className="cd-terminal-screen" ref={elementRef} data-testid="terminal" />
    </div>
  );
}
