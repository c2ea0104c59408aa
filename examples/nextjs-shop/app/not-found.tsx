/** 404 for unknown products and categories. */
export default function NotFound() {
  return (
    <div>
      <h1>Not found</h1>
      <p>
        That page does not exist. <a href="/">Back to the shop</a>
      </p>
    </div>
  );
}
