/** The transferEvents subscription of one transfer: its latest event (a SNAPSHOT first, then each
 *  change). When the connection drops before the terminal event, it subscribes again after a
 *  pause, passing the last cursor seen, so that nothing is lost or shown twice. */
import { useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient } from 'urql';

import { isUnauthenticated } from '../../api/errors.ts';
import { type TransferEvent, TransferEventsSubscription } from './queries.ts';

const RESUME_AFTER_MS = 2000;

export interface LiveState {
  event: TransferEvent | null; // the latest event received
  error: CombinedError | null; // why the stream stopped, if it did
  resuming: boolean; // the stream dropped and is being opened again
}

export function useTransferEvents(transferId: string, enabled: boolean): LiveState {
  const client = useClient();
  const [state, setState] = useState<LiveState>({ event: null, error: null, resuming: false });
  const cursor = useRef<string | null>(null);

  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let timer: number | undefined;
    let current: { unsubscribe: () => void } | null = null;
    const open = () => {
      current = client
        .subscription(TransferEventsSubscription, { transferId, after: cursor.current })
        .subscribe((result) => {
          if (stopped) return;
          const event = result.data?.transferEvents;
          if (event) {
            cursor.current = event.cursor;
            setState({ event, error: null, resuming: false });
            return;
          }
          if (!result.error) return;
          const error = result.error;
          // A refusal (not found, signed out) is final; a dropped connection is resumed.
          const resume = Boolean(error.networkError) && !isUnauthenticated(error);
          setState((previous) => ({ ...previous, error, resuming: resume }));
          if (resume) {
            current?.unsubscribe();
            timer = window.setTimeout(open, RESUME_AFTER_MS);
          }
        });
    };
    open();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      current?.unsubscribe();
    };
  }, [client, transferId, enabled]);

  return state;
}
