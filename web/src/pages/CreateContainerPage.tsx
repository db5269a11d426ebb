export function CreateContainerPage() { return <div>TODO</div>; }
