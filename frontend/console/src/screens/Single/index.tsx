/** Single: Transfer data from one user to another. */
export function SingleScreen() {
  return (
    <section aria-labelledby="single-heading">
      <h2 id="single-heading">Transfer data from one user to another</h2>
      <p>
        Here you will pick the Target User and the Source User, see what would move for each data type, and run
        the transfer after a confirmation.
      </p>
    </section>
  );
}
