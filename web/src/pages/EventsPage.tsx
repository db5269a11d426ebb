export function EventsPage() { return <div>TODO</div>; }
