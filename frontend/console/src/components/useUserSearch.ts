/** The user picker's search: the API's `users(filter: {search, active})`, asked SEARCH_DELAY_MS
 *  after the last keystroke, a page at a time. An answer to an older search is dropped, so the
 *  list always shows the words in the box now. */
import { useCallback, useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient } from 'urql';

import { type ResultOf, graphql } from '../graphql.ts';
import { UserLabelFragment } from './UserLabel.tsx';

export const SEARCH_DELAY_MS = 200;
export const PAGE_SIZE = 20;
const MAX_SEARCH_CHARS = 200; // the API refuses longer searches (INVALID_SEARCH)

export const PickerUsers = graphql(
  `
    query PickerUsers($filter: UserFilter!, $first: Int!, $after: String, $withTotal: Boolean!) {
      users(filter: $filter, first: $first, after: $after) {
        totalCount @include(if: $withTotal)
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

export type PickedUser = ResultOf<typeof PickerUsers>['users']['edges'][number]['node'];

export interface UserSearch {
  users: PickedUser[];
  total: number | null; // users matching over all pages; null until the first answer
  hasMore: boolean;
  loading: boolean;
  error: CombinedError | null;
  searched: string; // the words the list is the answer to
  loadMore: () => void;
}

interface Page {
  users: PickedUser[];
  total: number;
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
        // The count of the whole match is its own query on the server: asked with the first page only.
        .query(PickerUsers, { filter, first: PAGE_SIZE, after, withTotal: !previous }, { requestPolicy: 'network-only' })
        .toPromise();
      if (number !== asked.current) return;
      setLoading(false);
      if (answer.error || !answer.data) {
        setError(answer.error ?? null);
        return;
      }
      const { users } = answer.data;
      setResult({
        key,
        page: {
          users: [...(previous?.users ?? []), ...users.edges.map((edge) => edge.node)],
          total: previous?.total ?? users.totalCount ?? 0,
          endCursor: users.pageInfo.endCursor ?? null,
          hasMore: users.pageInfo.hasNextPage,
        },
      });
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
