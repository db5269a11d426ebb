export function ContainerDetailPage({ id }: { id: string }) { return <div>{id}</div>; }
