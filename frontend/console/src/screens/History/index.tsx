/** History: the transfers of the tenant, newest first. */
export function HistoryScreen() {
  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      <p>Here you will find every transfer, newest first, filtered by status.</p>
    </section>
  );
}
