export function ImagesPage() { return <div>TODO</div>; }
