export function NetworksPage() { return <div>TODO</div>; }
