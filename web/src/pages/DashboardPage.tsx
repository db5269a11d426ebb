export function DashboardPage() { return <div>TODO</div>; }
