/** "Rows per page" and "Previous page" / "Next page" over a Relay connection. Relay pages only
 *  forward, so the cursor each page seen started after is kept: going back reuses it. */
import { useId, useState } from 'react';

export const PAGE_SIZES = [10, 25, 50, 100] as const;

export interface Paging {
  first: number;
  after: string | null;
  page: number; // 0-based
  setFirst: (first: number) => void;
  next: (endCursor: string) => void;
  previous: () => void;
}

/** The page asked for now; back to the first page whenever `resetKey` (e.g. the upload) changes. */
export function usePaging(resetKey: string, initialFirst: number = PAGE_SIZES[0]): Paging {
  const [state, setState] = useState({ key: resetKey, first: initialFirst, starts: [null] as (string | null)[] });
  const current = state.key === resetKey ? state : { key: resetKey, first: state.first, starts: [null] };
  const page = current.starts.length - 1;
  return {
    first: current.first,
    after: current.starts[page],
    page,
    setFirst: (first) => setState({ key: resetKey, first, starts: [null] }),
    next: (endCursor) => setState({ ...current, starts: [...current.starts, endCursor] }),
    previous: () => setState({ ...current, starts: current.starts.length > 1 ? current.starts.slice(0, -1) : current.starts }),
  };
}

export function pageText(from: number, to: number, totalCount: number): string {
  return `Rows ${from} to ${to} of ${totalCount}`;
}

/** aria-disabled rather than disabled: the button keeps the focus when it reaches the last page. */
function PageButton({ label, enabled, onClick }: { label: string; enabled: boolean; onClick: () => void }) {
  return (
    <button type="button" aria-disabled={!enabled || undefined} onClick={() => enabled && onClick()}>
      {label}
    </button>
  );
}

export interface PaginationProps {
  paging: Paging;
  shown: number; // rows on this page
  totalCount: number;
  hasNextPage: boolean;
  endCursor: string | null;
  busy: boolean;
}

export function Pagination({ paging, shown, totalCount, hasNextPage, endCursor, busy }: PaginationProps) {
  const sizeId = useId();
  const from = totalCount === 0 ? 0 : paging.page * paging.first + 1;
  const to = paging.page * paging.first + shown;
  return (
    <div className="pagination">
      <div className="page-size">
        <label htmlFor={sizeId}>Rows per page</label>
        <select id={sizeId} value={paging.first} onChange={(event) => paging.setFirst(Number(event.currentTarget.value))}>
          {PAGE_SIZES.map((size) => (
            <option key={size} value={size}>
              {size}
            </option>
          ))}
        </select>
      </div>
      <p className="page-position">{pageText(from, to, totalCount)}</p>
      <div className="page-buttons">
        <PageButton label="Previous page" enabled={!busy && paging.page > 0} onClick={paging.previous} />
        <PageButton
          label="Next page"
          enabled={!busy && hasNextPage && endCursor !== null}
          onClick={() => endCursor && paging.next(endCursor)}
        />
      </div>
    </div>
  );
}
