/** The Preview section: what the uploaded file asks for, page by page, every error at its line,
 *  and "Run Transfer" once there is none. */
import { useEffect, useId, useRef } from 'react';
import { useQuery } from 'urql';

import { describeUserError } from '../../api/errors.ts';
import { FormErrors, RequestError } from '../../components/FieldErrors.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { graphql } from '../../graphql.ts';
import { pageText, Pagination, usePaging } from './Pagination.tsx';
import { PreviewRowFragment, PreviewTable } from './PreviewTable.tsx';
import { RunBulkTransfer } from './RunBulkTransfer.tsx';

const PreviewQuery = graphql(
  `
    query BulkPreview($id: ID!, $first: Int!, $after: String) {
      bulkUpload(id: $id) {
        id
        filename
        rowCount
        pairCount
        errorCount
        errors {
          code
          message
        }
        rows(first: $first, after: $after) {
          totalCount
          pageInfo {
            hasNextPage
            endCursor
          }
          edges {
            cursor
            node {
              ...PreviewRow
            }
          }
        }
      }
    }
  `,
  [PreviewRowFragment],
);

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

export function Preview({ uploadId, onStarted }: { uploadId: string; onStarted: (transferId: string) => void }) {
  const headingId = useId();
  const announce = useAnnounce();
  const paging = usePaging(uploadId);
  const [preview] = useQuery({
    query: PreviewQuery,
    variables: { id: uploadId, first: paging.first, after: paging.after },
    requestPolicy: 'network-only',
  });
  // The page shown stays while the next one loads, so that the focused button stays where it is.
  const shown = useRef(preview.data);
  if (preview.data) shown.current = preview.data;
  if (shown.current?.bulkUpload && shown.current.bulkUpload.id !== uploadId) shown.current = undefined;
  const upload = (preview.data ?? shown.current)?.bulkUpload;
  const rows = upload?.rows;
  const from = paging.page * paging.first + 1;
  const shownText = rows ? pageText(rows.totalCount ? from : 0, from - 1 + rows.edges.length, rows.totalCount) : '';

  const settled = !preview.fetching;
  useEffect(() => {
    if (shownText && settled) announce(`Preview: ${shownText}.`);
  }, [shownText, settled, announce]);

  if (!upload) {
    return (
      <section aria-labelledby={headingId} className="bulk-step">
        <h3 id={headingId}>Preview</h3>
        {preview.fetching ? <p role="status">Loading the preview…</p> : null}
        <RequestError error={preview.error} />
        {!preview.fetching && !preview.error ? <p>This upload was not found. Upload the file again.</p> : null}
      </section>
    );
  }
  return (
    <section aria-labelledby={headingId} className="bulk-step">
      <h3 id={headingId}>Preview</h3>
      <p>
        <strong>{upload.filename}</strong>: {plural(upload.rowCount, 'row', 'rows')},{' '}
        {plural(upload.pairCount, 'pair', 'pairs')} to transfer,{' '}
        {upload.errorCount ? <strong className="notice">{plural(upload.errorCount, 'error', 'errors')}</strong> : 'no errors'}.
      </p>
      {upload.errorCount ? (
        <p>Fix every error in the file, save it, and upload it again: the transfer can run only when there is none.</p>
      ) : null}
      <FormErrors messages={upload.errors.map(describeUserError)} />
      <RequestError error={preview.error} />
      {rows && rows.totalCount > 0 ? (
        <>
          <PreviewTable rows={rows.edges.map((edge) => edge.node)} caption={`Rows of ${upload.filename}`} />
          <Pagination
            paging={paging}
            shown={rows.edges.length}
            totalCount={rows.totalCount}
            hasNextPage={rows.pageInfo.hasNextPage}
            endCursor={rows.pageInfo.endCursor ?? null}
            busy={preview.fetching}
          />
        </>
      ) : null}
      <RunBulkTransfer
        uploadId={upload.id}
        filename={upload.filename}
        pairCount={upload.pairCount}
        errorCount={upload.errorCount}
        onStarted={onStarted}
      />
    </section>
  );
}
