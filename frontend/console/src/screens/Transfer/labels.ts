/** How the console names a transfer's status and kind, and shows its times. */

export const STATUS_LABELS: Record<string, string> = {
  QUEUED: 'Queued',
  RUNNING: 'Running',
  SUCCEEDED: 'Succeeded',
  PARTIALLY_FAILED: 'Partially failed',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export const KIND_LABELS: Record<string, string> = {
  SINGLE: 'Single transfer',
  BULK: 'Bulk transfer',
  REVERT: 'Undo transfer',
};

const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A DateTime of the API (ISO 8601) in the reader's language and time zone. */
export function formatWhen(iso: string): string {
  return WHEN.format(new Date(iso));
}
