/** A running transfer's progress: a progress bar of the pairs done, and the pairs done, succeeded
 *  and failed. Milestones (each quarter) are announced in the live region, not every pair. */
import { useEffect, useId, useRef } from 'react';

import { PartHeading } from '../../components/Heading.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { STATUS_LABELS } from './labels.ts';

export interface Counters {
  status: string;
  totalPairs: number;
  processedPairs: number;
  succeededPairs: number;
  failedPairs: number;
}

const MILESTONES = 4; // announced at 25, 50 and 75 %

function percent(done: number, total: number): number {
  return total === 0 ? 0 : Math.floor((done * 100) / total);
}

export function Progress({ counters }: { counters: Counters }) {
  const labelId = useId();
  const { status, totalPairs, processedPairs, succeededPairs, failedPairs } = counters;
  const text = `${processedPairs} of ${totalPairs} pairs done`;
  useMilestones(processedPairs, totalPairs);
  return (
    <section className="transfer-progress" aria-labelledby={labelId}>
      <PartHeading id={labelId}>Transfer progress</PartHeading>
      <p className="transfer-status">
        Status: <strong>{STATUS_LABELS[status] ?? status}</strong>
        {status === 'QUEUED' ? ' (waiting for a worker)' : null}
      </p>
      <div
        role="progressbar"
        aria-labelledby={labelId}
        aria-valuemin={0}
        aria-valuemax={totalPairs}
        aria-valuenow={processedPairs}
        aria-valuetext={`${text} (${percent(processedPairs, totalPairs)} %)`}
        className="progress-bar"
      >
        <progress value={processedPairs} max={Math.max(totalPairs, 1)} aria-hidden="true" />
      </div>
      <dl className="counters">
        <div>
          <dt>Pairs done</dt>
          <dd>
            {processedPairs} of {totalPairs}
          </dd>
        </div>
        <div>
          <dt>Succeeded</dt>
          <dd>{succeededPairs}</dd>
        </div>
        <div>
          <dt>Failed</dt>
          <dd>{failedPairs}</dd>
        </div>
      </dl>
    </section>
  );
}

/** Announces each quarter passed while the page watches, once. */
function useMilestones(done: number, total: number) {
  const announce = useAnnounce();
  const said = useRef<number | null>(null);
  useEffect(() => {
    if (total === 0) return;
    const reached = Math.floor((done * MILESTONES) / total);
    if (said.current === null) {
      said.current = reached; // what the page opened on is on the screen, not news
      return;
    }
    if (reached > said.current && reached < MILESTONES) {
      said.current = reached;
      announce(`Transfer ${percent(done, total)} % done: ${done} of ${total} pairs.`);
    }
  }, [announce, done, total]);
}
