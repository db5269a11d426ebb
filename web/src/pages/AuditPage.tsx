export function AuditPage() { return <div>TODO</div>; }
