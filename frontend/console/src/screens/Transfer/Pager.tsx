/** Paging through a Relay connection with "Previous page" and "Next page", as the bulk preview
 *  does: the cursor each page seen starts after is kept, so "Previous page" needs no backward cursor. */
import { useState } from 'react';

export interface Pages {
  after: string | null; // pass as the connection's `after`
  offset: number; // rows before this page
  previous: (() => void) | null; // null on the first page
  next: (endCursor: string | null | undefined) => void;
}

/** The paging state of one list; a new `scope` (a filter) starts again at the first page. */
export function usePages(pageSize: number, scope: string = ''): Pages {
  const [state, setState] = useState<{ scope: string; cursors: (string | null)[] }>({ scope, cursors: [null] });
  const cursors = state.scope === scope ? state.cursors : [null];
  return {
    after: cursors[cursors.length - 1],
    offset: (cursors.length - 1) * pageSize,
    previous: cursors.length > 1 ? () => setState({ scope, cursors: cursors.slice(0, -1) }) : null,
    next: (endCursor) => setState({ scope, cursors: [...cursors, endCursor ?? null] }),
  };
}

export function Pager({ summary, pages, hasNextPage, endCursor }: { summary: string; pages: Pages; hasNextPage: boolean; endCursor: string | null | undefined }) {
  return (
    <div className="pager">
      <p>{summary}</p>
      <div className="actions">
        <button type="button" disabled={!pages.previous} onClick={() => pages.previous?.()}>
          Previous page
        </button>
        <button type="button" disabled={!hasNextPage} onClick={() => pages.next(endCursor)}>
          Next page
        </button>
      </div>
    </div>
  );
}
