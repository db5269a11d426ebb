// `useWebSocket`: a component's socket to one of the server's streams, kept open while the
// component is mounted (a `ReconnectingSocket`: single-use tickets, back-off, the server's
// structured errors), with its state to render.
import { useCallback, useEffect, useRef, useState } from "react";
import { ReconnectingSocket, type SocketOptions, type SocketSnapshot, type SocketTarget } from "../api/reconnectingSocket";

/**
 * Keeps a socket open while the component is mounted and `target` is set (pass `null`
 * to close it). Callbacks may change between renders without reconnecting.
 */
export function useWebSocket(target: SocketTarget | null, options: SocketOptions = {}) {
  const [snapshot, setSnapshot] = useState<SocketSnapshot>({ status: "idle", error: null, attempt: 0 });
  const optionsRef = useRef(options);
  const socketRef = useRef<ReconnectingSocket | null>(null);
  useEffect(() => {
    optionsRef.current = options;
  });

  const key = target
    ? JSON.stringify([target.path, target.purpose, target.resourceId ?? null, typeof target.query === "function" ? "fn" : target.query])
    : null;
  const targetRef = useRef(target);
  useEffect(() => {
    targetRef.current = target;
  });

  useEffect(() => {
    const current = targetRef.current;
    if (key === null || !current) return;
    const proxy: SocketOptions = {
      onOpen: (send) => optionsRef.current.onOpen?.(send),
      onMessage: (message) => optionsRef.current.onMessage?.(message),
      onBinary: (data) => optionsRef.current.onBinary?.(data),
      onClose: (event) => optionsRef.current.onClose?.(event),
      get autoReconnect() {
        return optionsRef.current.autoReconnect;
      },
      get reconnectAttempts() {
        return optionsRef.current.reconnectAttempts;
      },
      get reconnectDelay() {
        return optionsRef.current.reconnectDelay;
      },
      get maxDelay() {
        return optionsRef.current.maxDelay;
      },
    };
    const socket = new ReconnectingSocket(
      { ...current, query: () => {
        const query = targetRef.current?.query ?? current.query;
        return typeof query === "function" ? query() : (query ?? {});
      } },
      proxy,
      setSnapshot,
    );
    socketRef.current = socket;
    socket.start();
    return () => {
      socket.stop();
      socketRef.current = null;
    };
  }, [key]);

  const send = useCallback((data: string | ArrayBuffer | Uint8Array | object) => socketRef.current?.send(data) ?? false, []);
  const reconnect = useCallback(() => socketRef.current?.restart(), []);
  const disconnect = useCallback(() => socketRef.current?.stop(), []);

  return {
    ...snapshot,
    connected: snapshot.status === "open",
    send,
    reconnect,
    disconnect,
  };
}
