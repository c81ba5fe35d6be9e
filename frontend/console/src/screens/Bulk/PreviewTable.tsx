/** The preview's table: one row per line of the file that asks for a transfer or has an error,
 *  with its line number, the cells as written, the users they name, and that line's errors
 *  beside it. It scrolls inside its own region on a narrow screen, never the page. */
import { useId } from 'react';

import { describeUserError } from '../../api/errors.ts';
import { UserLabel, UserLabelFragment } from '../../components/UserLabel.tsx';
import { type FragmentOf, graphql, readFragment } from '../../graphql.ts';

export const PreviewRowFragment = graphql(
  `
    fragment PreviewRow on BulkUploadRow {
      rowNumber
      fromUserId
      toUserId
      errors {
        code
        message
      }
      sourceUser {
        ...UserLabel
      }
      targetUser {
        ...UserLabel
      }
    }
  `,
  [UserLabelFragment],
);

export function PreviewTable({ rows, caption }: { rows: readonly FragmentOf<typeof PreviewRowFragment>[]; caption: string }) {
  const captionId = useId();
  return (
    <div className="table-scroll" role="region" aria-labelledby={captionId} tabIndex={0}>
      <table className="preview-table">
        <caption id={captionId}>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Line</th>
            <th scope="col">From User ID</th>
            <th scope="col">To User ID</th>
            <th scope="col">Source User (data moves from)</th>
            <th scope="col">Target User (receives the data)</th>
            <th scope="col">Errors</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((masked) => {
            const row = readFragment(PreviewRowFragment, masked);
            return (
              <tr key={row.rowNumber} className={row.errors.length ? 'has-errors' : undefined}>
                <th scope="row">{row.rowNumber}</th>
                <td>{row.fromUserId ?? ''}</td>
                <td>{row.toUserId ?? ''}</td>
                <td>{row.sourceUser ? <UserLabel user={row.sourceUser} /> : <span className="hint">Not found</span>}</td>
                <td>{row.targetUser ? <UserLabel user={row.targetUser} /> : <span className="hint">Not found</span>}</td>
                <td>
                  {row.errors.length ? (
                    <ul className="row-errors">
                      {row.errors.map((error) => (
                        <li key={error.code}>{describeUserError(error)}</li>
                      ))}
                    </ul>
                  ) : (
                    <span className="ok">None</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
