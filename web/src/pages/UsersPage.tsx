export function UsersPage() { return <div>TODO</div>; }
