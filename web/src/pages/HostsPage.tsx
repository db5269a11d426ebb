export function HostsPage() { return <div>TODO</div>; }
