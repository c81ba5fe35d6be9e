/** "Click here to download an export of all users.": a plain link to the people file. The API's
 *  download links expire within minutes, so a fresh one is asked for on every click; the one
 *  shown in the href (for "open in new tab" and the like) is renewed before it expires. */
import { type MouseEvent, useEffect, useState } from 'react';
import { useClient, useQuery } from 'urql';

import { describeError } from '../../api/errors.ts';
import { FormErrors } from '../../components/FieldErrors.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { graphql } from '../../graphql.ts';

export const PeopleFileLinkQuery = graphql(`
  query PeopleFileLink {
    viewer {
      peopleFileLink {
        url
        expiresAt
      }
    }
  }
`);

const RENEW_BEFORE_MS = 30_000; // a link this close to its end is renewed, not shown

export function PeopleFileLink() {
  const client = useClient();
  const announce = useAnnounce();
  const [link, refetch] = useQuery({ query: PeopleFileLinkQuery, requestPolicy: 'network-only' });
  const [failure, setFailure] = useState<string | null>(null);
  const current = link.data?.viewer.peopleFileLink;

  useEffect(() => {
    if (!current) return;
    const wait = Math.max(new Date(current.expiresAt).getTime() - Date.now() - RENEW_BEFORE_MS, 1_000);
    const timer = window.setTimeout(() => refetch({ requestPolicy: 'network-only' }), wait);
    return () => window.clearTimeout(timer);
  }, [current, refetch]);

  async function download(event: MouseEvent<HTMLAnchorElement>) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    const fresh = await client.query(PeopleFileLinkQuery, {}, { requestPolicy: 'network-only' }).toPromise();
    const url = fresh.data?.viewer.peopleFileLink.url;
    if (!url) {
      setFailure(fresh.error ? describeError(fresh.error) : 'The export could not be prepared. Try again.');
      return;
    }
    setFailure(null);
    announce('The export of all users is downloading as people.csv.');
    window.location.assign(url); // an attachment: the browser saves it, and the page stays
  }

  return (
    <>
      <p>
        <a href={current?.url ?? '#'} onClick={(event) => void download(event)} download="people.csv">
          Click here to download an export of all users.
        </a>
      </p>
      <FormErrors messages={failure ? [failure] : []} />
    </>
  );
}
