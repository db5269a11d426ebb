// The one `/ws/events` socket of the UI: feeds the events store, resumes after the last
// position it received (so a reconnect misses nothing), and shows its state.
import { paths } from "../api/paths";
import { useWebSocket } from "../hooks/useWebSocket";
import { useEvents, type EventEnvelope } from "../stores/events";

export function LiveEvents() {
  const socket = useWebSocket(
    {
      path: paths.ws.events(),
      purpose: "events",
      query: () => {
        const position = useEvents.getState().position;
        return position > 0 ? { after: position } : {};
      },
    },
    {
      onOpen: () => useEvents.getState().setConnected(true),
      onClose: () => useEvents.getState().setConnected(false),
      onMessage: (message) => {
        if (message.type === "event") useEvents.getState().receive(message.event as EventEnvelope);
      },
    },
  );
  const label = socket.connected ? "live" : socket.status === "connecting" ? "reconnecting…" : "offline";
  return (
    <div className={`live live-${socket.connected ? "on" : "off"}`} title={socket.error?.message ?? "live events"} data-testid="live-status">
      <span className="dot" /> {label}
    </div>
  );
}
