/** One transfer: its progress or outcome, its pairs, and undo. */
export function TransferScreen({ id }: { id: string }) {
  return (
    <section aria-labelledby="transfer-heading">
      <h2 id="transfer-heading">Transfer</h2>
      <p>
        Here you will follow transfer <code>{id}</code> live, see each pair and its outcome, download its audit
        log, retry its failed pairs and undo it.
      </p>
    </section>
  );
}
