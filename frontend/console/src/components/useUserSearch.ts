/** The user picker's search: the API's `users(filter: {search, active})`, asked SEARCH_DELAY_MS
 *  after the last keystroke, a page at a time. An answer to an older search is dropped, so the
 *  list always shows the words in the box now. The count of the whole match is asked after the
 *  first page has come (it reads every match): the list never waits for it. */
import { useCallback, useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient } from 'urql';

import { type ResultOf, graphql } from '../graphql.ts';
import { UserLabelFragment } from './UserLabel.tsx';

export const SEARCH_DELAY_MS = 150;
export const PAGE_SIZE = 20;
const MAX_SEARCH_CHARS = 200; // the API refuses longer searches (INVALID_SEARCH)

export const PickerUsers = graphql(
  `
    query PickerUsers($filter: UserFilter!, $first: Int!, $after: String) {
      users(filter: $filter, first: $first, after: $after) {
        edges {
          node {
            id
            username
            ...UserLabel
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  `,
  [UserLabelFragment],
);

const PickerTotal = graphql(`
  query PickerTotal($filter: UserFilter!) {
    users(filter: $filter, first: 0) {
      totalCount
    }
  }
`);

export type PickedUser = ResultOf<typeof PickerUsers>['users']['edges'][number]['node'];

export interface UserSearch {
  users: PickedUser[];
  total: number | null; // users matching over all pages; null until counted
  hasMore: boolean;
  loading: boolean;
  error: CombinedError | null;
  searched: string; // the words the list is the answer to
  loadMore: () => void;
}

interface Page {
  users: PickedUser[];
  total: number | null;
  endCursor: string | null;
  hasMore: boolean;
}

/** The words of `text` the API is asked about: trimmed, at most the API's length. */
export function searchWords(text: string): string {
  return text.trim().slice(0, MAX_SEARCH_CHARS);
}

/** Users matching `text` (every word; a number is also an exact User ID), inactive ones too when
 *  `includeInactive`; nothing is asked while `enabled` is false (the list is closed). */
export function useUserSearch(text: string, includeInactive: boolean, enabled: boolean): UserSearch {
  const client = useClient();
  const words = searchWords(text);
  const [debounced, setDebounced] = useState(words);
  const [result, setResult] = useState<{ key: string; page: Page } | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<CombinedError | null>(null);
  const asked = useRef(0); // the number of the newest request: older answers are dropped

  useEffect(() => {
    if (words === debounced) return;
    const timer = window.setTimeout(() => setDebounced(words), SEARCH_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [words, debounced]);

  const key = `${includeInactive}\u0000${debounced}`;

  const fetchPage = useCallback(
    async (after: string | null, previous: Page | null) => {
      const number = ++asked.current;
      setLoading(true);
      setError(null);
      const filter = { search: debounced || null, active: includeInactive ? null : true };
      const answer = await client
        .query(PickerUsers, { filter, first: PAGE_SIZE, after }, { requestPolicy: 'network-only' })
        .toPromise();
      if (number !== asked.current) return;
      setLoading(false);
      if (answer.error || !answer.data) {
        setError(answer.error ?? null);
        return;
      }
      const { users } = answer.data;
      const shown = [...(previous?.users ?? []), ...users.edges.map((edge) => edge.node)];
      const hasMore = users.pageInfo.hasNextPage;
      const total = previous ? previous.total : hasMore ? null : shown.length;
      const endCursor = users.pageInfo.endCursor ?? null;
      setResult({ key, page: { users: shown, total, endCursor, hasMore } });
      if (total !== null) return;
      const counted = await client.query(PickerTotal, { filter }, { requestPolicy: 'network-only' }).toPromise();
      if (number !== asked.current || !counted.data) return; // a newer search or page took over
      const count = counted.data.users.totalCount;
      setResult((now) => (now && now.key === key && now.page.total === null ? { key, page: { ...now.page, total: count } } : now));
    },
    [client, debounced, includeInactive, key],
  );

  // A new search or filter starts from its first page; paging on is `loadMore`'s.
  const shownKey = result?.key;
  useEffect(() => {
    if (enabled && shownKey !== key) void fetchPage(null, null);
  }, [enabled, key, shownKey, fetchPage]);

  // Until the new answer comes, the list shows the last one (marked busy), rather than nothing.
  const page = result?.page ?? null;
  const current = shownKey === key;
  const loadMore = useCallback(() => {
    if (current && page?.hasMore && !loading) void fetchPage(page.endCursor, page);
  }, [current, page, loading, fetchPage]);

  return {
    users: page?.users ?? [],
    total: page?.total ?? null,
    hasMore: current && (page?.hasMore ?? false),
    loading: loading || (enabled && !current && !error) || words !== debounced,
    error,
    searched: debounced,
    loadMore,
  };
}
