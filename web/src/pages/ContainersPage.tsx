export function ContainersPage() { return <div>TODO</div>; }
