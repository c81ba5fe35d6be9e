/** Bulk: Perform multiple data transfers at one time via a CSV upload. */
export function BulkScreen() {
  return (
    <section aria-labelledby="bulk-heading">
      <h2 id="bulk-heading">Perform multiple data transfers at one time via a CSV upload</h2>
      <p>
        Here you will download the export of all users, upload the edited file, review its rows and errors, and
        run the bulk data transfer.
      </p>
    </section>
  );
}
