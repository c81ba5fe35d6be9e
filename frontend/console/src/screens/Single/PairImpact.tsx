/** The impact of the pair per data type, before anything runs: what moves from the Source User to
 *  the Target User, and what of the Target User's an OVERWRITE deletes. Types where nothing
 *  happens are counted, not listed. */
import { useId } from 'react';

import { POLICY_NAMES } from './DataTypeChoice.tsx';
import { type Impact, totals } from './plan.ts';

const PRODUCT_NAMES = { QM: 'Quality Management', CLASSIC_WFM: 'Classic WFM' } as const;

function records(count: number): string {
  return count === 1 ? '1 record' : `${count.toLocaleString()} records`;
}

/** One sentence for the whole pair: shown above the table, announced, and said in the confirmation. */
export function impactSentence(impact: readonly Impact[], source: string, target: string): string {
  const { moves, deletes } = totals(impact);
  const deleted = deletes > 0 ? ` ${records(deletes)} of ${target} are deleted (overwritten).` : ` Nothing of ${target} is deleted.`;
  return `${records(moves)} move from ${source} to ${target}.${deleted}`;
}

export function PairImpact({ impact, source, target }: { impact: readonly Impact[]; source: string; target: string }) {
  const id = useId();
  const shown = impact.filter((row) => row.moves > 0 || row.deletes > 0);
  const untouched = impact.length - shown.length;
  return (
    <section className="impact" aria-labelledby={`${id}-heading`}>
      <h3 id={`${id}-heading`}>Impact per data type</h3>
      <p>{impactSentence(impact, source, target)}</p>
      {shown.length > 0 ? (
        <div className="table-scroll" role="region" aria-labelledby={`${id}-caption`} tabIndex={0}>
          <table>
            <caption id={`${id}-caption`}>Records moved and deleted per data type</caption>
            <thead>
              <tr>
                <th scope="col">Data type</th>
                <th scope="col" className="number">
                  Moves
                </th>
                <th scope="col" className="number">
                  Deletes
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((row) => (
                <tr key={row.dataType.key}>
                  <th scope="row">
                    {row.dataType.name}{' '}
                    <span className="hint">
                      {PRODUCT_NAMES[row.dataType.product]} · {POLICY_NAMES[row.dataType.policy]}
                    </span>
                  </th>
                  <td className="number">{row.moves.toLocaleString()}</td>
                  <td className="number">{row.deletes.toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {untouched > 0 ? (
        <p className="hint">
          Nothing moves or is deleted for the other {untouched === 1 ? 'data type' : `${untouched} data types`}.
        </p>
      ) : null}
    </section>
  );
}
