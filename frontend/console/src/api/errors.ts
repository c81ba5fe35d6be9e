/** What went wrong, in a sentence a person understands: every GraphQL error code and every
 *  userErrors code the API documents (README, "Errors"), and where a userError belongs. */
import type { CombinedError } from 'urql';

const OUT_OF_DATE = 'The console and the service do not match: reload the page to get the current console.';
const TOO_MUCH = 'The console asked the service for too much at once. Reload the page; if it happens again, report it.';

/** `extensions.code` of a GraphQL error (or an HTTP refusal in the same shape). */
export const ERROR_SENTENCES: Record<string, string> = {
  UNAUTHENTICATED: 'Your sign-in has ended or is not valid any more. Sign in again.',
  FORBIDDEN: 'You do not have the permission to transfer user data. Ask a tenant administrator for it.',
  NOT_FOUND: 'This was not found: it may be outside your view, or it does not exist.',
  TRANSFER_NOT_FOUND: 'This transfer was not found: it may be outside your view, or it does not exist.',
  INVALID_CURSOR: 'The list changed while you were paging through it. Start again from the first page.',
  INVALID_PAGE_SIZE: 'That number of rows per page is not allowed. Choose another one.',
  INVALID_TEXT: 'The text holds characters that cannot be saved. Remove them and try again.',
  INVALID_SEARCH: 'That search is too long or holds characters that cannot be searched. Shorten it and try again.',
  SERVICE_UNAVAILABLE: 'The service’s database is unavailable or busy just now. Nothing was changed: try again in a few seconds.',
  INTERNAL_ERROR: 'Something went wrong in the service, and nothing was changed. Try again; if it happens again, report it with the reference shown.',
  REQUEST_TOO_LARGE: 'What you sent is too large for the service. Send a smaller file.',
  REQUEST_TIMEOUT: 'What you sent took too long to arrive. Check your connection and try again.',
  LINK_EXPIRED: 'This download link has expired. Ask for a new one.',
  BAD_REQUEST: OUT_OF_DATE,
  METHOD_NOT_ALLOWED: OUT_OF_DATE,
  GRAPHQL_PARSE_FAILED: OUT_OF_DATE,
  GRAPHQL_VALIDATION_FAILED: OUT_OF_DATE,
  BAD_USER_INPUT: OUT_OF_DATE,
  OPERATION_NAME_REQUIRED: OUT_OF_DATE,
  QUERY_TOO_LARGE: TOO_MUCH,
  QUERY_TOO_DEEP: TOO_MUCH,
  QUERY_TOO_COMPLEX: TOO_MUCH,
  TOO_MANY_ALIASES: TOO_MUCH,
  TOO_MANY_FRAGMENTS: TOO_MUCH,
  TOO_MANY_UPLOADS: TOO_MUCH,
};

/** `code` of a userErrors entry (a mutation's payload, an upload's rows, a plan's errors, a failed pair). */
export const USER_ERROR_SENTENCES: Record<string, string> = {
  INVALID_USER_ID: 'This is not a User ID: a User ID is a whole number above zero.',
  USER_NOT_FOUND: 'There is no user with this User ID.',
  USER_OUTSIDE_VIEW: 'This user is outside your view, so you cannot transfer their data.',
  TENANT_ADMIN: "A tenant administrator's data cannot be transferred, to or from them.",
  SAME_USER: 'The source user and the target user are the same person: choose two different users.',
  SOURCE_USED_TWICE: "This source user's data is sent to more than one target: give each source one target.",
  TARGET_USED_TWICE: 'This target user receives data from more than one source: give each target one source.',
  USER_IN_TWO_ROLES: 'This user is a source in one pair and a target in another: a user can be only one of the two.',
  USER_BUSY: 'This user is in a transfer that is queued or running: wait until it has finished.',
  NOTHING_TO_TRANSFER: 'The source user has no data of the chosen types to transfer.',
  INVALID_DATA_TYPE: 'The choice of data types is not valid: choose at least one, each once.',
  INVALID_FILE: 'This file cannot be read as a User Data Transfer file. Download the export again and edit that.',
  MISSING_COLUMNS: 'This file lacks the "From User ID" and "To User ID" columns. Download the export again and edit that.',
  FILE_TOO_LARGE: 'This file is too large. Upload a smaller one.',
  NO_PAIRS: 'This file asks for no transfer: write a From User ID in the To User ID column of at least one row.',
  TOO_MANY_PAIRS: 'This file asks for too many transfers at once: at most 2,000 pairs.',
  INVALID_TEXT: 'This row holds damaged text that cannot be saved. Fix the row in the file and upload it again.',
  CONFIRMATION_REQUIRED: 'The transfer was not confirmed, so nothing started.',
  UPLOAD_HAS_ERRORS: 'The file still has rows with errors. Fix them and upload the file again.',
  UPLOAD_ALREADY_USED: 'This upload has been run already. Upload the file again to run it again.',
  UPLOAD_NOT_FOUND: 'This upload was not found. Upload the file again.',
  BULK_TRANSFER_IN_PROGRESS: 'A bulk data transfer is already running. Wait until it has finished.',
  IDEMPOTENCY_KEY_REUSED: 'This request was already sent with other settings. Start again.',
  INVALID_IDEMPOTENCY_KEY: 'The console sent a request key the service does not take. Reload the page and try again.',
  TRANSFER_NOT_FOUND: 'This transfer was not found: it may be outside your view, or it does not exist.',
  TRANSFER_FINISHED: 'This transfer has finished already, so it cannot be cancelled.',
  TRANSFER_NOT_FINISHED: 'This transfer has not finished yet. Wait until it has.',
  NOTHING_TO_RETRY: 'This transfer has no failed pairs to retry.',
  ALREADY_RETRIED: 'The failed pairs of this transfer were retried already: retry that transfer instead.',
  TRANSFER_ERROR: 'The service could not apply this pair, and nothing of it was changed. Retry the failed pairs.',
  FORBIDDEN: 'The person who started this transfer no longer has the permission to transfer user data.',
  NOT_REVERTIBLE: 'This transfer cannot be undone: it has not finished, moved nothing, or is an undo itself.',
  REVERT_EXPIRED: 'This transfer can no longer be undone: the time to undo it has passed.',
  ALREADY_REVERTED: 'This transfer has been undone already.',
  REVERT_CONFLICT: 'Undoing this pair would break a rule of the data, so it was left as it is.',
};

const UNREACHABLE = 'The service cannot be reached. Check your connection and try again.';

interface GraphQLErrorLike {
  message: string;
  extensions?: Record<string, unknown>;
}

function codeOf(error: GraphQLErrorLike): string | undefined {
  const code = error.extensions?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The first GraphQL error's sentence (with the reference to quote for INTERNAL_ERROR), or why
 *  the service could not be reached. */
export function describeError(error: CombinedError): string {
  const [first] = error.graphQLErrors;
  if (!first) return UNREACHABLE;
  const code = codeOf(first);
  const sentence = (code && ERROR_SENTENCES[code]) || first.message;
  const reference = first.extensions?.requestId;
  return typeof reference === 'string' ? `${sentence} Reference: ${reference}.` : sentence;
}

/** The token was refused: HTTP 401, a GraphQL error UNAUTHENTICATED, or a WebSocket closed at its
 *  connection_init with 4403. */
export function isUnauthenticated(error: CombinedError): boolean {
  const closed = error.networkError as unknown as { code?: unknown } | undefined;
  return (
    error.response?.status === 401 ||
    closed?.code === 4403 ||
    error.graphQLErrors.some((e) => codeOf(e) === 'UNAUTHENTICATED')
  );
}

export interface UserErrorLike {
  readonly code: string;
  readonly message: string;
  readonly field?: readonly string[] | null;
}

/** A userError's sentence: the console's for a code it knows, else the service's own message. */
export function describeUserError(error: UserErrorLike): string {
  return USER_ERROR_SENTENCES[error.code] ?? error.message;
}

/** The userErrors that name `field` (e.g. ['input', 'targetUserId']), as sentences. */
export function errorsFor(errors: readonly UserErrorLike[] | null | undefined, field: readonly string[]): string[] {
  return (errors ?? [])
    .filter((e) => e.field && e.field.length === field.length && e.field.every((part, i) => part === field[i]))
    .map(describeUserError);
}

/** The userErrors that name none of `placed` fields: shown together, above the form's button. */
export function unplacedErrors(errors: readonly UserErrorLike[] | null | undefined, placed: readonly (readonly string[])[]): string[] {
  return (errors ?? [])
    .filter((e) => !e.field || !placed.some((field) => field.length === e.field!.length && field.every((part, i) => part === e.field![i])))
    .map(describeUserError);
}
