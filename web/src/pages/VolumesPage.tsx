export function VolumesPage() { return <div>TODO</div>; }
