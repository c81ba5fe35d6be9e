/** userErrors beside the field they name, and those naming no field above the form's buttons.
 *  Give the field `aria-describedby={id}` and `aria-invalid` when `errorsFor(...)` is not empty. */
import { describeError } from '../api/errors.ts';
import type { CombinedError } from 'urql';

export function FieldErrors({ id, messages }: { id: string; messages: readonly string[] }) {
  if (messages.length === 0) return null;
  return (
    <ul id={id} className="field-errors">
      {messages.map((message) => (
        <li key={message}>{message}</li>
      ))}
    </ul>
  );
}

/** Errors for the whole form (or a failed request), read out when they appear. */
export function FormErrors({ messages }: { messages: readonly string[] }) {
  if (messages.length === 0) return null;
  return (
    <div className="form-errors" role="alert">
      {messages.map((message) => (
        <p key={message}>{message}</p>
      ))}
    </div>
  );
}

/** A failed request (a GraphQL error, or no answer), as a sentence. */
export function RequestError({ error }: { error: CombinedError | undefined }) {
  return error ? <FormErrors messages={[describeError(error)]} /> : null;
}
